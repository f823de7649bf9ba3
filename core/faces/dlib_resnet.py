"""Read dlib's face-recognition ResNet from its .dat file, checked layer by layer (dlib_onnx builds it).

The network is the one in dlib/examples/dnn_face_recognition_ex.cpp (``anet_type``). dlib's
serialization does not describe its own structure (tag and skip layers leave no name, only a
version number), so the layer stack below mirrors the C++ type and the reader checks every
layer's name, filter count, kernel, stride and padding against it while reading.

dlib's layout, from the outermost layer inwards: each ``add_layer`` writes a version number,
then its whole subnetwork, then its own details and some training state. So the file holds all
the version numbers first (top of the network to bottom), then the input layer, then the layer
details from the bottom of the network to the top.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.faces.weights import ModelLoadError  # missing, truncated, corrupt or altered

INPUT_SIZE = 150
EMBEDDING_SIZE = 128


# --- the network as dlib's C++ type describes it (top of the network first) ----------------

# Each entry: (kind, args). Kinds with an add_layer around them write details; "tag" and
# "skip" only write a version number.


def _block(filters: int, stride: int) -> list[tuple]:
    # block<N,BN,stride> = BN<con<N,3,3,1,1,relu<BN<con<N,3,3,stride,stride,SUBNET>>>>>
    return [
        ("affine", ()),
        ("con", (filters, 3, 3, 1, 1)),
        ("relu", ()),
        ("affine", ()),
        ("con", (filters, 3, 3, stride, stride)),
    ]


def _ares(filters: int) -> list[tuple]:
    # relu<add_prev1<block<N,affine,1,tag1<SUBNET>>>>
    return [("relu", ()), ("add_prev", (1,)), *_block(filters, 1), ("tag", (1,))]


def _ares_down(filters: int) -> list[tuple]:
    # relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,affine,2,tag1<SUBNET>>>>>>>
    return [
        ("relu", ()),
        ("add_prev", (2,)),
        ("avg_pool", (2, 2, 2, 2)),
        ("skip", (1,)),
        ("tag", (2,)),
        *_block(filters, 2),
        ("tag", (1,)),
    ]


def _anet_layers() -> list[tuple]:
    layers: list[tuple] = [
        ("fc", (EMBEDDING_SIZE,)),
        ("avg_pool", (0, 0, 1, 1)),
    ]  # avg_pool_everything
    layers += _ares_down(256)  # alevel0
    layers += _ares(256) + _ares(256) + _ares_down(256)  # alevel1
    layers += _ares(128) + _ares(128) + _ares_down(128)  # alevel2
    layers += _ares(64) + _ares(64) + _ares(64) + _ares_down(64)  # alevel3
    layers += _ares(32) + _ares(32) + _ares(32)  # alevel4
    layers += [
        ("max_pool", (3, 3, 2, 2)),
        ("relu", ()),
        ("affine", ()),
        ("con", (32, 7, 7, 2, 2)),  # sits directly on input_rgb_image_sized<150>
    ]
    return layers


ANET_LAYERS: tuple[tuple, ...] = tuple(_anet_layers())


# --- what the reader returns ----------------------------------------------------------------


@dataclass
class Layer:
    """One layer, bottom-up order; arrays are float32 and the geometry is what dlib stored."""

    kind: str
    tag: int = 0  # tag / skip / add_prev id
    weight: np.ndarray | None = None  # con: (out, in, kh, kw); fc: (in, out); affine: gamma
    bias: np.ndarray | None = None  # con bias, affine beta
    kernel: tuple[int, int] = (0, 0)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    relu_after: bool = False  # con_6 may carry a fused relu
    disabled: bool = False  # affine_2 / relu_2 may be switched off (folded elsewhere)


@dataclass
class DlibResNet:
    """The face-recognition network read from a .dat file."""

    path: str
    sha256: str
    means: tuple[float, float, float]  # per-channel RGB means subtracted at the input
    input_size: int
    layers: list[Layer] = field(default_factory=list)  # bottom (input side) first


# --- dlib's serialization primitives --------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes, path: str) -> None:
        self.buf = memoryview(data)
        self.pos = 0
        self.path = path

    def fail(self, what: str) -> ModelLoadError:
        return ModelLoadError(f"{self.path}: {what} (at byte {self.pos} of {len(self.buf)})")

    def take(self, n: int) -> memoryview:
        if self.pos + n > len(self.buf):
            raise self.fail("file ends early; it is truncated or not a dlib model")
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def int(self) -> int:
        # dlib's integer format: a control byte (0x80 = negative, low nibble = byte count),
        # then that many little-endian magnitude bytes.
        ctrl = self.take(1)[0]
        size = ctrl & 0x0F
        if size == 0 or size > 8 or ctrl & 0x70:
            raise self.fail(f"bad integer control byte 0x{ctrl:02x}")
        value = int.from_bytes(self.take(size), "little")
        return -value if ctrl & 0x80 else value

    def string(self) -> str:
        n = self.int()
        if not 0 <= n <= 1024:
            raise self.fail(f"implausible string length {n}")
        return bytes(self.take(n)).decode("latin-1")

    def bool(self) -> bool:
        ch = bytes(self.take(1))
        if ch not in (b"0", b"1"):
            raise self.fail(f"bad boolean byte {ch!r}")
        return ch == b"1"

    def float(self) -> float:
        # float_details: int64 mantissa and int16 exponent, with three reserved exponents.
        mantissa, exponent = self.int(), self.int()
        special = {32000: math.inf, 32001: -math.inf, 32002: math.nan}
        if exponent in special:
            return special[exponent]
        return math.ldexp(mantissa, exponent)

    def tensor(self) -> np.ndarray:
        if (version := self.int()) != 2:
            raise self.fail(f"unknown tensor version {version}")
        shape = tuple(self.int() for _ in range(4))
        if min(shape) < 0:
            raise self.fail(f"bad tensor shape {shape}")
        count = math.prod(shape)
        raw = self.take(4 * count)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    def alias_tensor(self) -> tuple[int, ...]:
        if (version := self.int()) != 1:
            raise self.fail(f"unknown alias_tensor version {version}")
        return tuple(self.int() for _ in range(4))

    def expect(self, *names: str) -> str:
        name = self.string()
        if name not in names:
            raise self.fail(f"expected {' or '.join(names)}, found {name!r}")
        return name


# --- reading the network ----------------------------------------------------------------------


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file (identifies the embedding model)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read model file ({exc.strerror})") from exc
    return digest.hexdigest()


def read_dlib_resnet(path: str | Path) -> DlibResNet:
    """Parse dlib_face_recognition_resnet_model_v1.dat into weights and layer geometry."""
    path = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read model file ({exc.strerror})") from exc
    r = _Reader(data, path)

    # add_loss_layer: version 1, loss details, then the subnetwork.
    if (version := r.int()) != 1:
        raise r.fail(f"unexpected loss-layer version {version}; not a dlib network file")
    if r.expect("loss_metric_", "loss_metric_2") == "loss_metric_2":
        r.float(), r.float()  # margin and distance threshold: training-only

    # Top to bottom: every wrapper's version number.
    versions = []
    for kind, _ in ANET_LAYERS[:-1]:
        version = r.int()
        allowed = (1,) if kind in ("tag", "skip") else (1, 2)
        if version not in allowed:
            raise r.fail(f"unexpected {kind} layer version {version}")
        versions.append(version)
    input_version = r.int()  # the add_layer that holds the input layer
    if input_version not in (2, 3):
        raise r.fail(f"unexpected input add_layer version {input_version}")
    versions.append(input_version)

    r.expect("input_rgb_image_sized")
    means = (r.float(), r.float(), r.float())
    nr, nc = r.int(), r.int()
    if (nr, nc) != (INPUT_SIZE, INPUT_SIZE):
        raise r.fail(f"input is {nr}x{nc}; expected {INPUT_SIZE}x{INPUT_SIZE} chips")

    # Bottom to top: each layer's details, then the add_layer's training state.
    layers: list[Layer] = []
    for index in range(len(ANET_LAYERS) - 1, -1, -1):
        kind, args = ANET_LAYERS[index]
        if kind in ("tag", "skip"):
            layers.append(Layer(kind=kind, tag=args[0]))
            continue
        layers.append(_read_details(r, kind, args))
        r.bool(), r.bool(), r.bool()  # setup called, gradient stale, output disabled
        r.tensor(), r.tensor()  # x_grad, cached_output
        if index == len(ANET_LAYERS) - 1:
            r.tensor()  # grad_final
            if input_version == 3:
                r.int()  # sample expansion factor
        elif versions[index] == 2:
            r.tensor()  # params_grad

    if r.pos != len(r.buf):
        raise r.fail("trailing bytes after the network; not the expected model")
    sha256 = hashlib.sha256(data).hexdigest()
    return DlibResNet(path=path, sha256=sha256, means=means, input_size=nr, layers=layers)


def _read_details(r: _Reader, kind: str, args: tuple) -> Layer:
    return _DETAIL_READERS[kind](r, kind, args)


def _read_con(r: _Reader, kind: str, args: tuple) -> Layer:
    version = r.expect("con_4", "con_5", "con_6")
    params = r.tensor().ravel()
    filters = r.int()
    kh, kw = r.int(), r.int()
    sy, sx = r.int(), r.int()
    py, px = r.int(), r.int()
    w_shape = r.alias_tensor()
    b_shape = r.alias_tensor()
    for _ in range(4):
        r.float()  # learning-rate and weight-decay multipliers
    use_bias = r.bool() if version in ("con_5", "con_6") else True
    use_relu = r.bool() if version == "con_6" else False
    if (filters, kh, kw, sy, sx) != args:
        raise r.fail(f"con layer is {(filters, kh, kw, sy, sx)}, expected {args}")
    w_size = math.prod(w_shape)
    if w_shape[0] != filters or w_size > params.size:
        raise r.fail(f"con filter shape {w_shape} does not fit its parameters")
    weight = params[:w_size].reshape(w_shape)
    if use_bias and math.prod(b_shape) == filters:
        bias = params[w_size : w_size + filters]
    else:
        bias = np.zeros(filters, np.float32)
    return Layer(
        kind="con",
        weight=weight,
        bias=bias,
        kernel=(kh, kw),
        stride=(sy, sx),
        padding=(py, px),
        relu_after=use_relu,
    )


def _read_affine(r: _Reader, kind: str, args: tuple) -> Layer:
    version = r.expect("affine_", "affine_2")
    params = r.tensor().ravel()
    g_shape, b_shape = r.alias_tensor(), r.alias_tensor()
    mode = r.int()
    disabled = r.bool() if version == "affine_2" else False
    if mode != 0:
        raise r.fail("affine layer is in FC mode; expected per-channel (CONV) mode")
    n = math.prod(g_shape)
    if disabled:
        return Layer(kind="affine", disabled=True)
    if math.prod(b_shape) != n or params.size != 2 * n:
        raise r.fail(f"affine parameters {params.size} do not match gamma {g_shape}")
    return Layer(kind="affine", weight=params[:n], bias=params[n:])


def _read_relu(r: _Reader, kind: str, args: tuple) -> Layer:
    disabled = r.bool() if r.expect("relu_", "relu_2") == "relu_2" else False
    return Layer(kind="relu", disabled=disabled)


def _read_pool(r: _Reader, kind: str, args: tuple) -> Layer:
    r.expect(f"{kind}_2")
    kh, kw = r.int(), r.int()
    sy, sx = r.int(), r.int()
    py, px = r.int(), r.int()
    if (kh, kw, sy, sx) != args:
        raise r.fail(f"{kind} is {(kh, kw, sy, sx)}, expected {args}")
    if kh == 0 and kw == 0:
        return Layer(kind="global_avg_pool")
    return Layer(kind=kind, kernel=(kh, kw), stride=(sy, sx), padding=(py, px))


def _read_add_prev(r: _Reader, kind: str, args: tuple) -> Layer:
    r.expect("add_prev_")
    return Layer(kind="add_prev", tag=args[0])


def _read_fc(r: _Reader, kind: str, args: tuple) -> Layer:
    version = r.expect("fc_2", "fc_3")
    outputs, inputs = r.int(), r.int()
    params = r.tensor().ravel()
    w_shape = r.alias_tensor()
    r.alias_tensor()  # biases
    bias_mode = r.int()
    for _ in range(4):
        r.float()
    if version == "fc_3":
        r.bool()
    if outputs != args[0] or bias_mode != 1:
        raise r.fail(f"fc layer has {outputs} outputs, bias mode {bias_mode}")
    if w_shape[:2] != (inputs, outputs) or params.size < inputs * outputs:
        raise r.fail(f"fc weights {w_shape} do not match {inputs}x{outputs}")
    return Layer(kind="fc", weight=params[: inputs * outputs].reshape(inputs, outputs))


_DETAIL_READERS = {
    "con": _read_con,
    "affine": _read_affine,
    "relu": _read_relu,
    "max_pool": _read_pool,
    "avg_pool": _read_pool,
    "add_prev": _read_add_prev,
    "fc": _read_fc,
}


__all__ = [
    "ANET_LAYERS",
    "DlibResNet",
    "Layer",
    "ModelLoadError",
    "file_sha256",
    "read_dlib_resnet",
]

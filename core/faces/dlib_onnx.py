"""dlib's face-recognition ResNet (as dlib_resnet reads it) rebuilt as an ONNX graph, so
onnxruntime runs it: uint8 RGB chips in, 128-d embeddings out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from core.faces.dlib_resnet import EMBEDDING_SIZE, DlibResNet, Layer
from core.faces.weights import ModelLoadError


def build_onnx(net: DlibResNet, *, fold_affine: bool = True) -> onnx.ModelProto:
    """Build an ONNX model: uint8 chips (N,150,150,3) RGB in, float32 (N,128) out."""
    b = _GraphBuilder()
    size = net.input_size
    chips = helper.make_tensor_value_info("chips", TensorProto.UINT8, ["N", size, size, 3])
    x = b.node("Cast", ["chips"], to=TensorProto.FLOAT)
    x = b.node("Transpose", [x], perm=[0, 3, 1, 2])
    # dlib's input_rgb_image: (pixel - channel mean) / 256.
    means = np.asarray(net.means, np.float32).reshape(1, 3, 1, 1)
    x = b.node("Sub", [x, b.const(means)])
    x = b.node("Mul", [x, b.const(np.float32(1.0 / 256.0))])
    shape = (3, size, size)  # (channels, rows, cols), batch excluded

    x = _add_layers(b, net.layers, x, shape, fold_affine)

    b.nodes.append(helper.make_node("Identity", [x], ["embedding"]))
    out = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", EMBEDDING_SIZE])
    graph = helper.make_graph(b.nodes, "dlib_face_resnet_v1", [chips], [out], b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # opset 17 needs IR 8; keeps older onnxruntime builds happy
    model.doc_string = (
        f"dlib face recognition ResNet from {Path(net.path).name} sha256={net.sha256}"
    )
    onnx.checker.check_model(model)
    return model


def _add_layers(b: _GraphBuilder, layers: list[Layer], x: str, shape, fold_affine: bool) -> str:
    """The network's layers, bottom to top, as graph nodes after `x`; returns the output."""
    tags: dict[int, tuple[str, tuple[int, int, int]]] = {}
    i = 0
    while i < len(layers):
        layer = layers[i]
        if layer.kind == "con":
            weight, bias = layer.weight, layer.bias
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            if fold_affine and nxt is not None and nxt.kind == "affine" and not layer.relu_after:
                # affine(conv(x)) = conv(x) * g + b: fold g into the filters, b into the bias.
                if not nxt.disabled:
                    gamma = nxt.weight.astype(np.float64)
                    weight = (weight * gamma[:, None, None, None]).astype(np.float32)
                    bias = (bias * gamma + nxt.bias).astype(np.float32)
                i += 1
            x, shape = b.conv(x, shape, weight, bias, layer)
            if layer.relu_after:
                x = b.node("Relu", [x])
        else:
            x, shape = _add_layer(b, layer, x, shape, tags)
        i += 1
    return x


def _add_layer(b: _GraphBuilder, layer: Layer, x: str, shape, tags: dict):
    if layer.kind == "affine":
        if not layer.disabled:
            g = layer.weight.reshape(1, -1, 1, 1)
            x = b.node("Mul", [x, b.const(g)])
            x = b.node("Add", [x, b.const(layer.bias.reshape(1, -1, 1, 1))])
    elif layer.kind == "relu":
        if not layer.disabled:
            x = b.node("Relu", [x])
    elif layer.kind in ("max_pool", "avg_pool"):
        x, shape = b.pool(x, shape, layer)
    elif layer.kind == "global_avg_pool":
        x = b.node("GlobalAveragePool", [x])
        x = b.node("Flatten", [x], axis=1)
        shape = (shape[0], 1, 1)
    elif layer.kind == "tag":
        tags[layer.tag] = (x, shape)
    elif layer.kind == "skip":
        x, shape = tags[layer.tag]
    elif layer.kind == "add_prev":
        x, shape = b.add_padded(x, shape, *tags[layer.tag])
    elif layer.kind == "fc":
        x = b.node("MatMul", [x, b.const(layer.weight)])
    else:
        raise AssertionError(layer.kind)
    return x, shape


class _GraphBuilder:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, stem: str) -> str:
        self.count += 1
        return f"{stem}_{self.count}"

    def const(self, value: np.ndarray | np.generic) -> str:
        name = self.name("c")
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], **attrs) -> str:
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def conv(self, x: str, shape: tuple, weight: np.ndarray, bias: np.ndarray, layer: Layer):
        (kh, kw), (sy, sx), (py, px) = layer.kernel, layer.stride, layer.padding
        if weight.shape[1] != shape[0]:
            raise ModelLoadError(f"conv expects {weight.shape[1]} channels, gets {shape[0]}")
        out = self.node(
            "Conv",
            [x, self.const(weight), self.const(bias)],
            kernel_shape=[kh, kw],
            strides=[sy, sx],
            pads=[py, px, py, px],
        )
        rows = (shape[1] + 2 * py - kh) // sy + 1
        cols = (shape[2] + 2 * px - kw) // sx + 1
        return out, (weight.shape[0], rows, cols)

    def pool(self, x: str, shape: tuple, layer: Layer):
        (kh, kw), (sy, sx), (py, px) = layer.kernel, layer.stride, layer.padding
        attrs = {"kernel_shape": [kh, kw], "strides": [sy, sx], "pads": [py, px, py, px]}
        if layer.kind == "avg_pool":
            # dlib averages only the part of a window inside the image (mean of subm_clipped).
            attrs["count_include_pad"] = 0
        out = self.node("MaxPool" if layer.kind == "max_pool" else "AveragePool", [x], **attrs)
        rows = (shape[1] + 2 * py - kh) // sy + 1
        cols = (shape[2] + 2 * px - kw) // sx + 1
        return out, (shape[0], rows, cols)

    def add_padded(self, a: str, a_shape: tuple, b: str, b_shape: tuple):
        # dlib's add_prev sums tensors of different sizes by zero-padding each to the larger
        # size at the far end of every axis (channels, rows, cols); it does not project.
        target = tuple(max(p, q) for p, q in zip(a_shape, b_shape, strict=True))
        a = self._pad_to(a, a_shape, target)
        b = self._pad_to(b, b_shape, target)
        return self.node("Add", [a, b]), target

    def _pad_to(self, x: str, shape: tuple, target: tuple) -> str:
        if shape == target:
            return x
        ends = [t - s for s, t in zip(shape, target, strict=True)]
        pads = np.array([0, 0, 0, 0, 0, *ends], dtype=np.int64)
        return self.node("Pad", [x, self.const(pads)], mode="constant")


def serialized_onnx(net: DlibResNet, *, fold_affine: bool = True) -> bytes:
    """The ONNX model as bytes, ready for onnxruntime.InferenceSession (nothing on disk)."""
    return build_onnx(net, fold_affine=fold_affine).SerializeToString()

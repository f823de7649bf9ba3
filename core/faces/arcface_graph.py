"""The ArcFace MobileFaceNet graph (w600k_mbf.onnx) rewritten at load for fast single-core CPU runs.

The stock graph spends most of its CPU time outside the convolutions:

* ``PRelu`` has no fused kernel in onnxruntime's CPU provider and its broadcasting kernel is slow
  (about 2 ns per element).  Worse, it is not understood by the NCHWc layout transformer, so every
  PRelu is wrapped in a ReorderOutput / ReorderInput pair that converts the activations between
  the plain NCHW layout and the blocked NCHWc layout used by the fast MLAS convolutions.
* The second convolution is a grouped convolution with two channels per group.  The NCHWc
  transformer only accepts groups whose channel counts are multiples of the block size (16 on
  AVX-512), so it runs as an unfused im2col + GEMM in NCHW layout.

``optimise`` rewrites the graph, exactly in real arithmetic, into operators that the NCHWc
transformer keeps in blocked layout and fuses:

1. ``PRelu(x) = a * x + Relu((1 - a) * x)`` for per-channel slopes ``a <= 1`` (all of this
   model's slopes are in [-0.84, 0.95]).  Both per-channel multiplies are 1x1 depthwise Convs; the
   transformer fuses the Relu into one of them and the Add into the other (as its Sum input), so a
   PRelu costs two light NCHWc passes.  No reorders remain between the first Conv and the Gemm.
2. The 2-channels-per-group convolution is split into two depthwise convolutions,
   ``out = dw_same(y) + dw_other(swap(y))``, where ``swap`` exchanges the two channels of each
   group (a 1x1 Conv with a permutation matrix as weights).  All three stay in NCHWc layout.
3. The trailing ``BatchNormalization`` on the 512-d embedding is folded into the ``Gemm``.
4. The batch dimension is declared symbolic (the file declares an output of shape [1, 512]).

The result matches the unmodified model to float32 rounding (1 - cosine below 1e-6), and
runs in 5.6 ms a face on one core against 11.7 ms for the file as it is (bench/bench_embed.py).
Django-free.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

from core.faces.weights import cpu_session

INPUT_SIZE = 112
EMBEDDING_DIM = 512


class _Graph:
    """A mutable view of an ONNX graph: an ordered node list plus initializers as numpy arrays."""

    def __init__(self, model: onnx.ModelProto):
        self.model = onnx.ModelProto()
        self.model.CopyFrom(model)
        graph = self.model.graph
        self.nodes = list(graph.node)
        self.weights = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        self._counter = 0

    def name(self, stem: str) -> str:
        """Return a new tensor name that is deterministic and unique within the graph."""
        self._counter += 1
        return f"{stem}_fast{self._counter}"

    def constant(self, stem: str, value: np.ndarray) -> str:
        name = self.name(stem)
        self.weights[name] = np.ascontiguousarray(value, dtype=np.float32)
        return name

    def producers(self) -> dict[str, onnx.NodeProto]:
        return {out: node for node in self.nodes for out in node.output}

    def consumers(self) -> dict[str, list[onnx.NodeProto]]:
        users: dict[str, list[onnx.NodeProto]] = {}
        for node in self.nodes:
            for name in node.input:
                users.setdefault(name, []).append(node)
        return users

    def replace(self, node: onnx.NodeProto, new_nodes: list[onnx.NodeProto]) -> None:
        index = self.nodes.index(node)
        self.nodes[index : index + 1] = new_nodes

    def finish(self) -> onnx.ModelProto:
        graph = self.model.graph
        used = {name for node in self.nodes for name in node.input}
        del graph.node[:]
        graph.node.extend(self.nodes)
        del graph.initializer[:]
        graph.initializer.extend(
            numpy_helper.from_array(value, name)
            for name, value in self.weights.items()
            if name in used
        )
        # Intermediate shapes may be stale after the rewrite; onnxruntime re-infers them.
        del graph.value_info[:]
        return self.model


def _attributes(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _per_channel_slope(graph: _Graph, prelu: onnx.NodeProto) -> np.ndarray | None:
    """Return the PRelu slope as a 1-D array if it is a constant of shape (C, 1, 1) or (1, C, 1, 1),
    i.e. one slope per channel of an NCHW input (a 1-D slope would broadcast along W instead)."""
    slope = graph.weights.get(prelu.input[1])
    if slope is None or slope.shape not in ((slope.size, 1, 1), (1, slope.size, 1, 1)):
        return None
    return slope.reshape(-1).astype(np.float64)


def _fold_batchnorm_into_gemm(graph: _Graph) -> None:
    """Gemm(transB=1) followed by BatchNormalization -> a single Gemm with scaled weights."""
    producers = graph.producers()
    consumers = graph.consumers()
    for bn in [n for n in graph.nodes if n.op_type == "BatchNormalization"]:
        gemm = producers.get(bn.input[0])
        if (
            gemm is None
            or len(bn.output) != 1
            or gemm.op_type != "Gemm"
            or len(consumers[gemm.output[0]]) != 1
            or len(gemm.input) < 3
            or _attributes(gemm).get("transB", 0) != 1
            or _attributes(gemm).get("alpha", 1.0) != 1.0
            or _attributes(gemm).get("beta", 1.0) != 1.0
            or not all(name in graph.weights for name in (*bn.input[1:5], *gemm.input[1:3]))
        ):
            continue
        scale, shift, mean, var = (graph.weights[n].astype(np.float64) for n in bn.input[1:5])
        factor = scale / np.sqrt(var + _attributes(bn).get("epsilon", 1e-5))
        weight = graph.weights[gemm.input[1]].astype(np.float64)
        bias = graph.weights[gemm.input[2]].astype(np.float64)
        gemm.input[1] = graph.constant("fc_weight", weight * factor[:, None])
        gemm.input[2] = graph.constant("fc_bias", (bias - mean) * factor + shift)
        gemm.output[0] = bn.output[0]
        graph.nodes.remove(bn)


def _split_pair_grouped_convs(graph: _Graph) -> None:
    """Conv with two channels per group -> two depthwise Convs plus a channel-pair swap.

    Output channel c of pair (c, c^1) is ``w[c, c % 2] * y[c] + w[c, 1 - c % 2] * y[c^1]`` (each
    product a 3x3 correlation), i.e. ``dw_same(y) + dw_other(swap(y))``.  ``swap`` is a 1x1 Conv
    whose weights are a permutation matrix, with 16-channel groups so that it stays in NCHWc
    layout (multiplying by 1 and adding zeros is exact).  The final Add fuses into the second
    depthwise Conv as its Sum input.
    """
    for conv in [n for n in graph.nodes if n.op_type == "Conv"]:
        weight = graph.weights.get(conv.input[1])
        attrs = _attributes(conv)
        if weight is None or weight.ndim != 4 or weight.shape[1] != 2:
            continue
        channels = weight.shape[0]
        if channels % 2 or attrs.get("group", 1) != channels // 2:
            continue
        if len(conv.input) > 2 and conv.input[2] and conv.input[2] not in graph.weights:
            continue

        block = 16 if channels % 16 == 0 else channels
        rows = np.arange(channels)
        permutation = np.zeros((channels, block, 1, 1), dtype=np.float32)
        permutation[rows, (rows ^ 1) % block, 0, 0] = 1.0
        swapped = graph.name("pair_swapped")
        swap = helper.make_node(
            "Conv",
            [conv.input[0], graph.constant("pair_swap", permutation)],
            [swapped],
            group=channels // block,
            kernel_shape=[1, 1],
        )

        depthwise = {k: v for k, v in attrs.items() if k != "group"}
        depthwise["group"] = channels
        same_inputs = [conv.input[0], graph.constant("dw_same", weight[rows, rows % 2][:, None])]
        if len(conv.input) > 2 and conv.input[2]:
            same_inputs.append(conv.input[2])
        other_weight = graph.constant("dw_other", weight[rows, 1 - rows % 2][:, None])
        same_out, other_out = graph.name("dw_same_out"), graph.name("dw_other_out")
        graph.replace(
            conv,
            [
                swap,
                helper.make_node("Conv", same_inputs, [same_out], **depthwise),
                helper.make_node("Conv", [swapped, other_weight], [other_out], **depthwise),
                helper.make_node("Add", [same_out, other_out], [conv.output[0]]),
            ],
        )


def _rewrite_prelus(graph: _Graph, ranks: dict[str, int]) -> None:
    """PRelu(x) -> Add(DepthwiseConv1x1(x, a), Relu(DepthwiseConv1x1(x, 1 - a))) for slopes a <= 1.

    For x >= 0 the sum is a*x + (1 - a)*x = x, for x < 0 the Relu term is 0 and it is a*x.  Relu is
    positively homogeneous, so the scale (1 - a) >= 0 can sit inside it.  Both per-channel scales
    are written as 1x1 depthwise Convs, which onnxruntime's NCHWc transformer runs in blocked
    layout: the Relu fuses into the second one as its activation and the Add fuses into the first
    one as its "Sum" input, so each PRelu becomes two fused NCHWc convolutions with no Reorder and
    no separate Add pass.  PRelus with a slope > 1 (then PRelu is concave, and no Relu form with a
    non-negative scale exists), a slope that is not per-channel or an input that is not a 4-D
    (NCHW) tensor are left as they are.  ``ranks`` maps tensor names to their inferred rank.
    """
    for prelu in [n for n in graph.nodes if n.op_type == "PRelu"]:
        slope = _per_channel_slope(graph, prelu)
        if ranks.get(prelu.input[0]) != 4 or slope is None or np.any(slope > 1.0):
            continue
        x, y = prelu.input[0], prelu.output[0]
        channels = slope.size
        linear, positive, positive_relu = (graph.name(y + s) for s in ("_lin", "_pos", "_relu"))
        linear_scale = graph.constant(y + "_a", slope.reshape(channels, 1, 1, 1))
        positive_scale = graph.constant(y + "_1ma", (1.0 - slope).reshape(channels, 1, 1, 1))
        depthwise = {"group": channels, "kernel_shape": [1, 1]}
        graph.replace(
            prelu,
            [
                helper.make_node("Conv", [x, positive_scale], [positive], **depthwise),
                helper.make_node("Relu", [positive], [positive_relu]),
                helper.make_node("Conv", [x, linear_scale], [linear], **depthwise),
                helper.make_node("Add", [linear, positive_relu], [y]),
            ],
        )


def _make_batch_dynamic(model: onnx.ModelProto) -> None:
    for value in list(model.graph.input) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].Clear()
            dims[0].dim_param = "batch"


def optimise(model: onnx.ModelProto) -> onnx.ModelProto:
    """Return an equivalent, faster-to-run copy of the ArcFace model (the input is not modified).

    Deterministic and idempotent: optimise(optimise(m)) == optimise(m).
    """
    inferred = onnx.shape_inference.infer_shapes(model).graph
    ranks = {
        v.name: len(v.type.tensor_type.shape.dim)
        for v in (*inferred.input, *inferred.value_info, *inferred.output)
        if v.type.tensor_type.HasField("shape")
    }
    graph = _Graph(model)
    _fold_batchnorm_into_gemm(graph)
    _split_pair_grouped_convs(graph)  # keeps the grouped Conv's output name, so ranks stay valid
    _rewrite_prelus(graph, ranks)
    optimised = graph.finish()
    _make_batch_dynamic(optimised)
    onnx.checker.check_model(optimised)
    return optimised


def session(model_bytes: bytes, threads: int = 1) -> ort.InferenceSession:
    """Build a CPU InferenceSession for the model in ``model_bytes`` (original or optimised).

    The graph rewrite is applied here (it is a no-op on an already optimised model), then
    onnxruntime's full optimisation level converts it to fused NCHWc convolutions.
    """
    model = optimise(onnx.load_from_string(model_bytes))
    return cpu_session(model.SerializeToString(), threads)

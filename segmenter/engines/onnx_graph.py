"""ONNX graph rewrites done once, at build time, for onnxruntime's fast CPU kernels (needs onnx).

onnxruntime runs a 1-D convolution through its generic path (an im2col and a matrix product per
group: slow for the depthwise filters of the FSMN memory, and for silero-vad's encoder), but a
2-D one of height 1 on its blocked (NCHWc) kernels, which vectorise over 8 channels at a time.
`conv1d_as_2d` rewrites each 1-D Conv as Unsqueeze, zero channel padding to a multiple of 8 (where
the blocked kernel wants it), a 2-D Conv of height 1 and Squeeze. The arithmetic per output is
the same products and sums; only the order of the sums may differ (float rounding).
"""

from __future__ import annotations

from typing import Any

import numpy as np

HEIGHT = "height_axis"  # the axis a 1-D convolution's input gains to become 2-D


def conv1d_as_2d(model: Any) -> Any:
    """`model` (an onnx ModelProto) with every 1-D Conv made a 2-D one of height 1; in place."""
    from onnx import numpy_helper

    graph = model.graph
    weights = {w.name: w for w in graph.initializer}
    convs = [n for n in graph.node if n.op_type == "Conv" and len(_kernel(n)) == 1]
    if not convs:
        return model
    graph.initializer.append(numpy_helper.from_array(np.array([2], np.int64), HEIGHT))
    nodes = []
    for node in graph.node:
        nodes += _conv_2d(node, graph, weights) if node in convs else [node]
    del graph.node[:]
    graph.node.extend(nodes)
    return model


def _kernel(node: Any) -> list[int]:
    """The kernel_shape attribute of a Conv node."""
    from onnx import helper

    return next(helper.get_attribute_value(a) for a in node.attribute if a.name == "kernel_shape")


def _conv_2d(node: Any, graph: Any, weights: dict[str, Any]) -> list[Any]:
    """A 1-D Conv node as Unsqueeze, zero channel padding to a multiple of 8, 2-D Conv, Squeeze."""
    from onnx import helper, numpy_helper

    attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    weight = numpy_helper.to_array(weights[node.input[1]])  # (out, in, kernel)
    group = attributes.get("group", 1)
    extra = -weight.shape[1] % 8 if weight.shape[1] > 1 and group == 1 else 0
    weight = np.pad(weight, ((0, 0), (0, extra), (0, 0)))[:, :, None, :]
    graph.initializer.remove(weights[node.input[1]])
    graph.initializer.append(numpy_helper.from_array(weight, f"{node.name}/weight_2d"))
    tall = f"{node.name}/input_2d"
    nodes = [helper.make_node("Unsqueeze", [node.input[0], HEIGHT], [tall])]
    if extra:
        pads = f"{node.name}/channel_pads"
        widths = np.array([0, 0, 0, 0, 0, extra, 0, 0], np.int64)  # begins, ends of N C H T
        graph.initializer.append(numpy_helper.from_array(widths, pads))
        nodes.append(helper.make_node("Pad", [tall, pads], [f"{tall}_padded"]))
        tall = f"{tall}_padded"
    (kernel,), (stride,) = attributes["kernel_shape"], attributes.get("strides", [1])
    (dilation,), (before, after) = attributes.get("dilations", [1]), attributes.get("pads", [0, 0])
    conv = helper.make_node(
        "Conv",
        [tall, f"{node.name}/weight_2d", *node.input[2:]],
        [f"{node.name}/output_2d"],
        kernel_shape=[1, kernel],
        strides=[1, stride],
        pads=[0, before, 0, after],
        dilations=[1, dilation],
        group=group,
    )
    squeeze = helper.make_node("Squeeze", [f"{node.name}/output_2d", HEIGHT], list(node.output))
    return [*nodes, conv, squeeze]


def exact_integer_filters(model: Any) -> Any:
    """`model` with each ConvInteger whose int32 result is only cast to float made a float Conv of
    the same integers; in place.

    onnxruntime's ConvInteger takes its generic path (an im2col and a product per group); the
    FSMN memory's depthwise filters are 128 groups of one channel. As floats, x - x_zero and
    w - w_zero are integers of at most 255 in size, each product at most 255^2 and each sum of a
    k-tap filter at most k * 255^2; below 2^24 every one of them is exact in float32, in any
    order of summation, so the float Conv gives exactly the integers ConvInteger gave and the
    Cast after it gave (bit-identical outputs), and `conv1d_as_2d` can then put it on the blocked
    kernel. Refuses a filter too long for that bound."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    weights = {w.name: w for w in graph.initializer}
    readers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    replaced: dict[int, list[Any]] = {}
    dropped: set[int] = set()
    for node in graph.node:
        if node.op_type != "ConvInteger":
            continue
        casts = readers.get(node.output[0], [])
        cast = casts[0] if len(casts) == 1 else None
        to_float = (
            [a.i for a in cast.attribute if a.name == "to"] == [TensorProto.FLOAT]
            if cast
            else False
        )
        if not to_float or len(node.input) < 4 or node.input[1] not in weights:
            continue
        x, w, x_zero, w_zero = node.input
        integers = numpy_helper.to_array(weights[w]).astype(np.float32)
        integers -= (
            numpy_helper.to_array(weights[w_zero])
            .astype(np.float32)
            .reshape(-1, *[1] * (integers.ndim - 1))
        )
        taps = int(np.prod(integers.shape[1:]))
        if taps * 255 * 255 >= 2**24:
            raise ValueError(f"{node.name}: {taps} taps could round in float32; not rewritten")
        name = node.name or node.output[0]
        graph.initializer.append(numpy_helper.from_array(integers, f"{name}/integer_weight"))
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        replaced[id(node)] = [
            helper.make_node("Cast", [x], [f"{name}/x_float"], to=TensorProto.FLOAT),
            helper.make_node("Cast", [x_zero], [f"{name}/zero_float"], to=TensorProto.FLOAT),
            helper.make_node("Sub", [f"{name}/x_float", f"{name}/zero_float"], [f"{name}/x_int"]),
            helper.make_node(
                "Conv",
                [f"{name}/x_int", f"{name}/integer_weight"],
                list(cast.output),
                name=f"{name}/float",
                **attributes,
            ),
        ]
        dropped.add(id(cast))
    if not replaced:
        return model
    nodes = []
    for node in graph.node:
        if id(node) not in dropped:
            nodes += replaced.get(id(node), [node])
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in graph.node for name in node.input}
    for unused in [w for w in graph.initializer if w.name not in used]:
        graph.initializer.remove(unused)
    return model

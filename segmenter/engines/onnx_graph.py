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

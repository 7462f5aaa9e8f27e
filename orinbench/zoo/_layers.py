"""Layers for the zoo models, each a function of a :class:`GraphBuilder` and tensor names.

Only ops that ONNX Runtime runs on CPU and that TensorRT 8.6 and 10 parse natively are used.
BatchNorm is folded into the preceding Conv (as deployment exports do), so a "conv" here is
Conv with a bias, optionally followed by an activation.

Weights are He-normal (std sqrt(2/fan_in) before a ReLU, sqrt(1/fan_in) otherwise); the last
layer of each residual branch is scaled by ``RESIDUAL_GAIN`` so that random deep networks keep
their activations finite in FP16, as a zero-initialised last BatchNorm would.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ._graph import GraphBuilder

RESIDUAL_GAIN = 0.2


def _spatial(
    size: int, k: int, stride: int, pad: int, dilation: int = 1, ceil: bool = False
) -> int:
    span = size + 2 * pad - dilation * (k - 1) - 1
    return (-(-span // stride) if ceil else span // stride) + 1


def act(b: GraphBuilder, x: str, kind: str | None) -> str:
    """Apply an activation: ``relu``, ``sigmoid`` or None."""
    if kind is None:
        return x
    op = {"relu": "Relu", "sigmoid": "Sigmoid"}[kind]
    return b.op(op, [x], b.shapes[x])


def conv(
    b: GraphBuilder,
    x: str,
    cout: int,
    k: int = 3,
    *,
    stride: int = 1,
    groups: int = 1,
    activation: str | None = "relu",
    gain: float = 1.0,
) -> str:
    """Conv2d (BatchNorm folded in) + activation, 'same' padding."""
    n, cin, h, w = b.shapes[x]
    pad = (k - 1) // 2
    fan_in = cin // groups * k * k
    std = gain * math.sqrt((2.0 if activation == "relu" else 1.0) / fan_in)
    with b.scope("conv"):
        weight = b.weight((cout, cin // groups, k, k), std=std)
        bias = b.bias(cout)
    shape = (n, cout, _spatial(h, k, stride, pad), _spatial(w, k, stride, pad))
    y = b.op(
        "Conv",
        [x, weight, bias],
        shape,
        kernel_shape=[k, k],
        strides=[stride, stride],
        pads=[pad] * 4,
        group=groups,
    )
    return act(b, y, activation)


def deconv(
    b: GraphBuilder, x: str, cout: int, stride: int, *, activation: str | None = "relu"
) -> str:
    """ConvTranspose2d with kernel == stride (the SECOND FPN upsampler), BatchNorm folded."""
    n, cin, h, w = b.shapes[x]
    with b.scope("deconv"):
        weight = b.weight((cin, cout, stride, stride), std=math.sqrt(2.0 / cin))
        bias = b.bias(cout)
    y = b.op(
        "ConvTranspose",
        [x, weight, bias],
        (n, cout, h * stride, w * stride),
        kernel_shape=[stride, stride],
        strides=[stride, stride],
    )
    return act(b, y, activation)


def maxpool(b: GraphBuilder, x: str, k: int = 3, stride: int = 2, *, ceil: bool = False) -> str:
    n, c, h, w = b.shapes[x]
    pad = 0 if ceil else (k - 1) // 2
    shape = (n, c, _spatial(h, k, stride, pad, ceil=ceil), _spatial(w, k, stride, pad, ceil=ceil))
    return b.op(
        "MaxPool",
        [x],
        shape,
        kernel_shape=[k, k],
        strides=[stride, stride],
        pads=[pad] * 4,
        ceil_mode=int(ceil),
    )


def add(b: GraphBuilder, x: str, y: str) -> str:
    return b.op("Add", [x, y], np.broadcast_shapes(b.shapes[x], b.shapes[y]))


def mul(b: GraphBuilder, x: str, y: str) -> str:
    return b.op("Mul", [x, y], np.broadcast_shapes(b.shapes[x], b.shapes[y]))


def concat(b: GraphBuilder, xs: Sequence[str], axis: int = 1) -> str:
    shape = list(b.shapes[xs[0]])
    shape[axis] = sum(b.shapes[x][axis] for x in xs)
    return b.op("Concat", list(xs), shape, axis=axis)


def reshape(b: GraphBuilder, x: str, shape: Sequence[int], *, out: str | None = None) -> str:
    assert math.prod(shape) == math.prod(b.shapes[x]), (b.shapes[x], shape)
    return b.op("Reshape", [x, b.ints(shape)], shape, out=out)


def transpose(b: GraphBuilder, x: str, perm: Sequence[int], *, out: str | None = None) -> str:
    shape = [b.shapes[x][p] for p in perm]
    return b.op("Transpose", [x], shape, perm=list(perm), out=out)


def resize(b: GraphBuilder, x: str, size: Sequence[int], *, mode: str = "nearest") -> str:
    """Resize the two trailing dims to ``size`` (nearest or bilinear)."""
    n, c, _, _ = b.shapes[x]
    attrs = {"mode": mode}
    if mode == "nearest":
        attrs["nearest_mode"] = "floor"
        attrs["coordinate_transformation_mode"] = "asymmetric"
    else:
        attrs["coordinate_transformation_mode"] = "half_pixel"
    sizes = b.ints([n, c, *size])
    return b.op("Resize", [x, "", "", sizes], (n, c, *size), **attrs)


def softmax(b: GraphBuilder, x: str, axis: int) -> str:
    return b.op("Softmax", [x], b.shapes[x], axis=axis)


# -- residual networks --------------------------------------------------------------------------
def _shortcut(b: GraphBuilder, x: str, cout: int, stride: int) -> str:
    if stride == 1 and b.shapes[x][1] == cout:
        return x
    with b.scope("downsample"):
        return conv(b, x, cout, 1, stride=stride, activation=None)


def basic_block(b: GraphBuilder, x: str, planes: int, stride: int = 1) -> str:
    y = conv(b, x, planes, 3, stride=stride)
    y = conv(b, y, planes, 3, activation=None, gain=RESIDUAL_GAIN)
    return act(b, add(b, y, _shortcut(b, x, planes, stride)), "relu")


def bottleneck(b: GraphBuilder, x: str, planes: int, stride: int = 1, expansion: int = 4) -> str:
    y = conv(b, x, planes, 1)
    y = conv(b, y, planes, 3, stride=stride)
    y = conv(b, y, planes * expansion, 1, activation=None, gain=RESIDUAL_GAIN)
    return act(b, add(b, y, _shortcut(b, x, planes * expansion, stride)), "relu")


def resnet(
    b: GraphBuilder,
    x: str,
    *,
    depths: Sequence[int],
    width: int = 64,
    use_bottleneck: bool = True,
    first_stride: int = 1,
) -> list[str]:
    """ResNet: 7x7/2 stem, 3x3/2 max pool, then ``len(depths)`` stages; returns each stage output.

    Stage ``i`` has ``width * 2**i`` planes (×4 at the output for bottlenecks) and stride 2 except
    the first (``first_stride``). ``depths=(3, 4, 6, 3)`` with bottlenecks is ResNet-50.
    """
    with b.scope("stem"):
        y = conv(b, x, width, 7, stride=2)
        y = maxpool(b, y, 3, 2)
    outs = []
    for i, depth in enumerate(depths):
        planes = width * 2**i
        with b.scope(f"layer{i + 1}"):
            for j in range(depth):
                stride = (first_stride if i == 0 else 2) if j == 0 else 1
                with b.scope(str(j)):
                    if use_bottleneck:
                        y = bottleneck(b, y, planes, stride)
                    else:
                        y = basic_block(b, y, planes, stride)
        outs.append(y)
    return outs


def osa_block(
    b: GraphBuilder, x: str, conv_ch: int, out_ch: int, layers: int, *, identity: bool
) -> str:
    """VoVNetV2 one-shot aggregation: ``layers`` 3x3 convs, concat all, 1x1, eSE, residual."""
    feats = [x]
    y = x
    for _ in range(layers):
        y = conv(b, y, conv_ch, 3)
        feats.append(y)
    y = conv(b, concat(b, feats), out_ch, 1)
    with b.scope("ese"):
        n, c, _, _ = b.shapes[y]
        g = b.op("GlobalAveragePool", [y], (n, c, 1, 1))
        g = conv(b, g, c, 1, activation=None)
        g = b.op("HardSigmoid", [g], (n, c, 1, 1), alpha=1.0 / 6.0, beta=0.5)
        y = mul(b, y, g)
    return add(b, y, x) if identity else y


def vovnet(
    b: GraphBuilder,
    x: str,
    *,
    stem: Sequence[int],
    conv_ch: Sequence[int],
    out_ch: Sequence[int],
    blocks: Sequence[int],
    layers: int = 5,
) -> list[str]:
    """VoVNetV2 (V-99: stem (64, 64, 128), conv (128, 160, 192, 224), out (256, 512, 768, 1024),
    blocks (1, 3, 9, 3)); returns each stage output (strides 4, 8, 16, 32)."""
    with b.scope("stem"):
        y = conv(b, x, stem[0], 3, stride=2)
        y = conv(b, y, stem[1], 3)
        y = conv(b, y, stem[2], 3, stride=2)
    outs = []
    for i, (cc, oc, nb) in enumerate(zip(conv_ch, out_ch, blocks, strict=True)):
        with b.scope(f"stage{i + 2}"):
            if i > 0:
                y = maxpool(b, y, 3, 2, ceil=True)
            for j in range(nb):
                with b.scope(str(j)):
                    y = osa_block(b, y, cc, oc, layers, identity=j > 0)
        outs.append(y)
    return outs


# -- transformer pieces ------------------------------------------------------------------------
def linear(
    b: GraphBuilder, x: str, dout: int, *, activation: str | None = None, gain: float = 1.0
) -> str:
    """``x[..., din] @ W[din, dout] + bias`` (what torch exports for nn.Linear on 3-D input)."""
    shape = b.shapes[x]
    din = shape[-1]
    std = gain * math.sqrt((2.0 if activation == "relu" else 1.0) / din)
    with b.scope("linear"):
        weight = b.weight((din, dout), std=std)
        bias = b.bias(dout)
    y = b.op("MatMul", [x, weight], (*shape[:-1], dout))
    y = b.op("Add", [y, bias], b.shapes[y])
    return act(b, y, activation)


def layernorm(b: GraphBuilder, x: str) -> str:
    d = b.shapes[x][-1]
    with b.scope("ln"):
        scale = b.const(np.ones(d, np.float32), "gamma")
        shift = b.const(np.zeros(d, np.float32), "beta")
    return b.op("LayerNormalization", [x, scale, shift], b.shapes[x], axis=-1, epsilon=1e-5)


def attention(
    b: GraphBuilder,
    query: str,
    key: str,
    value: str,
    *,
    heads: int,
) -> str:
    """Multi-head attention written as MatMul/Softmax (how torch exports nn.MultiheadAttention).

    ``query`` [B, Lq, D], ``key``/``value`` [B, Lk, D] (positional encodings already added).
    """
    bsz, lq, d = b.shapes[query]
    lk = b.shapes[key][1]
    hd = d // heads
    q = linear(b, query, d)
    k = linear(b, key, d)
    v = linear(b, value, d)
    q = transpose(b, reshape(b, q, (bsz, lq, heads, hd)), (0, 2, 1, 3))
    k = transpose(b, reshape(b, k, (bsz, lk, heads, hd)), (0, 2, 3, 1))
    v = transpose(b, reshape(b, v, (bsz, lk, heads, hd)), (0, 2, 1, 3))
    s = b.op("MatMul", [q, k], (bsz, heads, lq, lk))
    s = b.op("Mul", [s, b.const(np.float32(1.0 / math.sqrt(hd)), "scale")], (bsz, heads, lq, lk))
    p = softmax(b, s, -1)
    o = b.op("MatMul", [p, v], (bsz, heads, lq, hd))
    o = reshape(b, transpose(b, o, (0, 2, 1, 3)), (bsz, lq, d))
    return linear(b, o, d)


def decoder_layer(
    b: GraphBuilder,
    tgt: str,
    memory: str,
    *,
    query_pos: str,
    memory_pos: str,
    heads: int,
    ffn_dim: int,
) -> str:
    """DETR-style post-norm decoder layer: self-attention, cross-attention, FFN."""
    with b.scope("self_attn"):
        qk = add(b, tgt, query_pos)
        tgt = layernorm(b, add(b, tgt, attention(b, qk, qk, tgt, heads=heads)))
    with b.scope("cross_attn"):
        q = add(b, tgt, query_pos)
        k = add(b, memory, memory_pos)
        tgt = layernorm(b, add(b, tgt, attention(b, q, k, memory, heads=heads)))
    with b.scope("ffn"):
        d = b.shapes[tgt][-1]
        y = linear(b, linear(b, tgt, ffn_dim, activation="relu"), d, gain=RESIDUAL_GAIN)
        tgt = layernorm(b, add(b, tgt, y))
    return tgt


def split_cameras(b: GraphBuilder, images: str) -> str:
    """``[1, cams, 3, H, W]`` -> ``[cams, 3, H, W]``: one backbone batch of all cameras."""
    _, cams, c, h, w = b.shapes[images]
    return reshape(b, images, (cams, c, h, w))


def mlp(b: GraphBuilder, x: str, hidden: int, out: int) -> str:
    """Linear -> ReLU -> Linear."""
    return linear(b, linear(b, x, hidden, activation="relu"), out)

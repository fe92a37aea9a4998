"""YOLO9tr: the YOLOv9-s / GELAN-s detector with YOLOv10's partial self-attention (PSA) block.

The channel plan and blocks follow the YOLOv9 code YOLO9tr builds on (Conv, ELAN1, AConv,
RepNCSPELAN4, SPPELAN, PAN neck, anchor-free DFL head). Two deliberate differences, both
stated in the model cards:

* The PGI auxiliary branch is not built. It only exists during training and is dropped at
  export; on these CPUs its cost buys no accuracy we could afford to measure.
* YOLO9tr's paper places its PSA blocks on that auxiliary branch (so they vanish at export);
  here one PSA sits on the main P5 path after SPPELAN, as in YOLOv10, so the attention block is
  really in the deployed graph and the runtime and compressor are measured on it.

`width` scales every channel count and `depth` the number of RepNCSP bottlenecks, as the
YOLOv9 s/m/c family does. The head returns raw per-anchor DFL logits and class logits,
concatenated over the P3/P4/P5 levels as one `[batch, 4 * reg_max + classes, anchors]` tensor;
the anchor grid and box decoding live in `edgetrim-models` (no_std), so the graph carries no
shape arithmetic.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

STRIDES = (8, 16, 32)


def scaled(channels, width):
    """Channel count after the width multiplier, rounded to a multiple of 8 (at least 8)."""
    return max(8, int(math.ceil(channels * width / 8) * 8))


class Conv(nn.Module):
    """Conv2d (no bias) + BatchNorm + SiLU: the unit every YOLO block is made of."""

    def __init__(self, c1, c2, k=1, s=1, g=1, act=True):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2, groups=g, bias=False)
        self.bn = nn.BatchNorm2d(c2, eps=1e-3, momentum=0.03)
        self.act = nn.SiLU() if act else nn.Identity()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class RepConvN(nn.Module):
    """3x3 conv with a parallel 1x1 branch during training, re-parameterised into one 3x3
    conv by `fuse()` (RepVGG), so inference pays for a single convolution."""

    def __init__(self, c1, c2):
        super().__init__()
        self.conv3 = Conv(c1, c2, 3, act=False)
        self.conv1 = Conv(c1, c2, 1, act=False)
        self.act = nn.SiLU()
        self.fused = None

    def forward(self, x):
        if self.fused is not None:
            return self.act(self.fused(x))
        return self.act(self.conv3(x) + self.conv1(x))

    def fuse(self):
        w3, b3 = fold_bn(self.conv3)
        w1, b1 = fold_bn(self.conv1)
        fused = nn.Conv2d(w3.shape[1], w3.shape[0], 3, 1, 1, bias=True)
        fused.weight.data = w3 + F.pad(w1, [1, 1, 1, 1])
        fused.bias.data = b3 + b1
        self.fused = fused
        del self.conv3, self.conv1


class RepNBottleneck(nn.Module):
    def __init__(self, c1, c2, shortcut=True):
        super().__init__()
        self.cv1 = RepConvN(c1, c2)
        self.cv2 = Conv(c2, c2, 3)
        self.add = shortcut and c1 == c2

    def forward(self, x):
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class RepNCSP(nn.Module):
    def __init__(self, c1, c2, n):
        super().__init__()
        c_ = c2 // 2
        self.cv1 = Conv(c1, c_, 1)
        self.cv2 = Conv(c1, c_, 1)
        self.cv3 = Conv(2 * c_, c2, 1)
        self.m = nn.Sequential(*(RepNBottleneck(c_, c_) for _ in range(n)))

    def forward(self, x):
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


class RepNCSPELAN4(nn.Module):
    """GELAN's main block: split, two RepNCSP+conv stages, concatenate every partial result."""

    def __init__(self, c1, c2, c3, c4, n):
        super().__init__()
        self.half = c3 // 2
        self.cv1 = Conv(c1, c3, 1)
        self.cv2 = nn.Sequential(RepNCSP(c3 // 2, c4, n), Conv(c4, c4, 3))
        self.cv3 = nn.Sequential(RepNCSP(c4, c4, n), Conv(c4, c4, 3))
        self.cv4 = Conv(c3 + 2 * c4, c2, 1)

    def forward(self, x):
        a, b = self.cv1(x).split((self.half, self.half), 1)
        c = self.cv2(b)
        d = self.cv3(c)
        return self.cv4(torch.cat((a, b, c, d), 1))


class ELAN1(RepNCSPELAN4):
    """GELAN-s's first stage: the same split-and-aggregate as RepNCSPELAN4, with plain convs."""

    def __init__(self, c1, c2, c3, c4):
        nn.Module.__init__(self)
        self.half = c3 // 2
        self.cv1 = Conv(c1, c3, 1)
        self.cv2 = Conv(c3 // 2, c4, 3)
        self.cv3 = Conv(c4, c4, 3)
        self.cv4 = Conv(c3 + 2 * c4, c2, 1)


class AConv(nn.Module):
    """YOLOv9's down-sampling: 2x2 average pool (stride 1) then a stride-2 3x3 conv."""

    def __init__(self, c1, c2):
        super().__init__()
        self.cv1 = Conv(c1, c2, 3, 2)

    def forward(self, x):
        return self.cv1(F.avg_pool2d(x, 2, 1, 0, False, True))


class SPPELAN(nn.Module):
    def __init__(self, c1, c2, c3):
        super().__init__()
        self.cv1 = Conv(c1, c3, 1)
        self.pool = nn.MaxPool2d(5, 1, 2)
        self.cv5 = Conv(4 * c3, c2, 1)

    def forward(self, x):
        y = [self.cv1(x)]
        for _ in range(3):
            y.append(self.pool(y[-1]))
        return self.cv5(torch.cat(y, 1))


class Attention(nn.Module):
    """YOLOv10's multi-head self-attention over all H*W positions, with a depthwise 3x3
    positional encoding on the values; keys and queries use half the head width."""

    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.key_dim = self.head_dim // 2
        self.scale = self.key_dim**-0.5
        self.qkv = Conv(dim, dim + 2 * self.key_dim * num_heads, 1, act=False)
        self.proj = Conv(dim, dim, 1, act=False)
        self.pe = Conv(dim, dim, 3, g=dim, act=False)

    def forward(self, x):
        b, c, h, w = x.shape
        n = h * w
        qkv = self.qkv(x).view(b, self.num_heads, 2 * self.key_dim + self.head_dim, n)
        q, k, v = qkv.split((self.key_dim, self.key_dim, self.head_dim), 2)
        attn = ((q.transpose(-2, -1) @ k) * self.scale).softmax(-1)
        y = (v @ attn.transpose(-2, -1)).view(b, c, h, w) + self.pe(v.reshape(b, c, h, w))
        return self.proj(y)


class PSA(nn.Module):
    """Partial self-attention: attention and an FFN on one half of the channels only."""

    def __init__(self, c1):
        super().__init__()
        self.c = c1 // 2
        self.cv1 = Conv(c1, 2 * self.c, 1)
        self.attn = Attention(self.c, num_heads=max(1, self.c // 64))
        self.ffn = nn.Sequential(Conv(self.c, 2 * self.c, 1), Conv(2 * self.c, self.c, 1, act=False))
        self.cv2 = Conv(2 * self.c, c1, 1)

    def forward(self, x):
        a, b = self.cv1(x).split((self.c, self.c), 1)
        b = b + self.attn(b)
        b = b + self.ffn(b)
        return self.cv2(torch.cat((a, b), 1))


class Detect(nn.Module):
    """Anchor-free decoupled head (YOLOv9 DDetect): per level, a box branch producing
    `4 * reg_max` DFL logits and a class branch producing class logits."""

    def __init__(self, nc, reg_max, channels):
        super().__init__()
        self.nc, self.reg_max = nc, reg_max
        c2 = max(channels[0] // 4, 4 * reg_max, 16)
        c2 = int(math.ceil(c2 / 4) * 4)
        c3 = max(channels[0], min(nc * 2, 128))
        self.box = nn.ModuleList(
            nn.Sequential(Conv(c, c2, 3), Conv(c2, c2, 3, g=4), nn.Conv2d(c2, 4 * reg_max, 1, groups=4))
            for c in channels
        )
        self.cls = nn.ModuleList(
            nn.Sequential(Conv(c, c3, 3), Conv(c3, c3, 3), nn.Conv2d(c3, nc, 1)) for c in channels
        )

    def init_biases(self, image_size):
        """YOLO's prior: class logits start near 5 objects per 640 px image, boxes at 1 bin."""
        for box, cls, s in zip(self.box, self.cls, STRIDES):
            box[-1].bias.data[:] = 1.0
            cls[-1].bias.data[:] = math.log(5 / self.nc / (image_size / s) ** 2)

    def forward(self, feats):
        out = [torch.cat((b(f), c(f)), 1).flatten(2) for f, b, c in zip(feats, self.box, self.cls)]
        return torch.cat(out, 2)


class YOLO9tr(nn.Module):
    def __init__(self, nc=8, width=1.0, depth=1.0, reg_max=16):
        super().__init__()
        ch = lambda c: scaled(c, width)  # noqa: E731
        n = max(1, round(3 * depth))
        self.config = dict(nc=nc, width=width, depth=depth, reg_max=reg_max)
        # Backbone (GELAN-s).
        self.b0 = Conv(3, ch(32), 3, 2)
        self.b1 = Conv(ch(32), ch(64), 3, 2)
        self.b2 = ELAN1(ch(64), ch(64), ch(64), ch(32))
        self.b3 = AConv(ch(64), ch(128))
        self.b4 = RepNCSPELAN4(ch(128), ch(128), ch(128), ch(64), n)  # P3
        self.b5 = AConv(ch(128), ch(192))
        self.b6 = RepNCSPELAN4(ch(192), ch(192), ch(192), ch(96), n)  # P4
        self.b7 = AConv(ch(192), ch(256))
        self.b8 = RepNCSPELAN4(ch(256), ch(256), ch(256), ch(128), n)  # P5
        # Neck: SPPELAN + PSA on P5, then the PAN top-down and bottom-up paths.
        self.sppelan = SPPELAN(ch(256), ch(256), ch(128))
        self.psa = PSA(ch(256))
        self.up4 = RepNCSPELAN4(ch(256) + ch(192), ch(192), ch(192), ch(96), n)
        self.up3 = RepNCSPELAN4(ch(192) + ch(128), ch(128), ch(128), ch(64), n)
        self.down4_conv = AConv(ch(128), ch(96))
        self.down4 = RepNCSPELAN4(ch(96) + ch(192), ch(192), ch(192), ch(96), n)
        self.down5_conv = AConv(ch(192), ch(128))
        self.down5 = RepNCSPELAN4(ch(128) + ch(256), ch(256), ch(256), ch(128), n)
        self.head = Detect(nc, reg_max, (ch(128), ch(192), ch(256)))

    def forward(self, x):
        p3 = self.b4(self.b3(self.b2(self.b1(self.b0(x)))))
        p4 = self.b6(self.b5(p3))
        p5 = self.psa(self.sppelan(self.b8(self.b7(p4))))
        up = lambda t: F.interpolate(t, scale_factor=2.0, mode="nearest")  # noqa: E731
        n4 = self.up4(torch.cat((up(p5), p4), 1))
        n3 = self.up3(torch.cat((up(n4), p3), 1))
        d4 = self.down4(torch.cat((self.down4_conv(n3), n4), 1))
        d5 = self.down5(torch.cat((self.down5_conv(d4), p5), 1))
        return self.head((n3, d4, d5))


def fold_bn(unit):
    """The (weight, bias) of a `Conv` unit's convolution with its BatchNorm folded in."""
    bn = unit.bn
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    weight = unit.conv.weight * scale.reshape(-1, 1, 1, 1)
    bias = bn.bias - bn.running_mean * scale
    return weight.detach(), bias.detach()


def fuse(model):
    """Inference form: RepConvN branches merged, every BatchNorm folded into its conv."""
    for m in list(model.modules()):
        if isinstance(m, RepConvN):
            m.fuse()
    for m in model.modules():
        if isinstance(m, Conv) and isinstance(m.bn, nn.BatchNorm2d):
            w, b = fold_bn(m)
            conv = nn.Conv2d(
                m.conv.in_channels, m.conv.out_channels, m.conv.kernel_size, m.conv.stride,
                m.conv.padding, groups=m.conv.groups, bias=True,
            )
            conv.weight.data, conv.bias.data = w, b
            m.conv, m.bn = conv, nn.Identity()
    return model


VARIANTS = {
    # The paper-size model: for speed benchmarks only (too slow to train on these CPUs).
    "paper": dict(width=1.0, depth=1.0, reg_max=16, size=640),
    # Linux boards.
    "s": dict(width=0.5, depth=0.33, reg_max=16, size=224),
    # Cortex-M class devices.
    "n": dict(width=0.25, depth=0.33, reg_max=8, size=128),
}


def build(variant, nc=8):
    v = VARIANTS[variant]
    return YOLO9tr(nc=nc, width=v["width"], depth=v["depth"], reg_max=v["reg_max"])

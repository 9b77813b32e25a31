"""Reference for core/visage-tasks/tests/heads_parity.rs: FaRL's dense head
(its small ViT pyramid, mmseg's UPerHead) and its alignment and parsing
losses, written here from FaRL's structure (farl/network/transformers.py,
mmseg.py, geometry.py, experiments/face_alignment/task.py) and the UPerNet
paper, with FaRL's and mmseg's parameter names.

    python dense_head.py DIR

For each case NAME in DIR/cases.json, reads DIR/NAME.weights.safetensors
(the Rust head's variables) and DIR/NAME.inputs.safetensors (maps, target
points, labels), runs one training step's forward and backward and an
eval forward, and writes DIR/NAME.reference.safetensors.
"""
import json
import math
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file


class ConvModule(nn.Module):
    """mmcv's ConvModule: conv without bias, BN, ReLU."""

    def __init__(self, c_in, c_out, k):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def up(x, like):
    return F.interpolate(x, size=like.shape[2:], mode="bilinear", align_corners=False)


class UPerHead(nn.Module):
    def __init__(self, in_channels, channels, num_classes, pool_scales=(1, 2, 3, 6)):
        super().__init__()
        top = in_channels[-1]
        self.psp_modules = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(s), ConvModule(top, channels, 1)) for s in pool_scales
        )
        self.bottleneck = ConvModule(top + len(pool_scales) * channels, channels, 3)
        self.lateral_convs = nn.ModuleList(ConvModule(c, channels, 1) for c in in_channels[:-1])
        self.fpn_convs = nn.ModuleList(ConvModule(channels, channels, 3) for _ in in_channels[:-1])
        self.fpn_bottleneck = ConvModule(len(in_channels) * channels, channels, 3)
        self.conv_seg = nn.Conv2d(channels, num_classes, 1)

    def forward(self, levels):
        top = levels[-1]
        psp = self.bottleneck(torch.cat([top] + [up(m(top), top) for m in self.psp_modules], 1))
        laterals = [conv(x) for conv, x in zip(self.lateral_convs, levels)] + [psp]
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + up(laterals[i], laterals[i - 1])
        outs = [conv(x) for conv, x in zip(self.fpn_convs, laterals)] + [laterals[-1]]
        outs = [outs[0]] + [up(x, outs[0]) for x in outs[1:]]
        return self.conv_seg(self.fpn_bottleneck(torch.cat(outs, 1)))


def vit_fpns(c):
    """FaRL's pyramid for patch 16: x4 (deconv, BN, GELU, deconv), x2, x1, x0.5."""
    return nn.ModuleList([
        nn.Sequential(nn.ConvTranspose2d(c, c, 2, 2), nn.BatchNorm2d(c), nn.GELU(), nn.ConvTranspose2d(c, c, 2, 2)),
        nn.ConvTranspose2d(c, c, 2, 2),
        nn.Identity(),
        nn.MaxPool2d(2, 2),
    ])


class DenseHead(nn.Module):
    def __init__(self, in_channels, vit, channels, out_channels):
        super().__init__()
        if vit:
            self.fpns = vit_fpns(in_channels[0])
        self.head = UPerHead(in_channels, channels, out_channels)

    def forward(self, maps):
        if hasattr(self, "fpns"):
            maps = [f(m) for f, m in zip(self.fpns, maps)]
        return self.head(maps)


def soft_argmax(heatmap):
    _, _, h, w = heatmap.shape
    ys = torch.arange(h, dtype=heatmap.dtype).view(1, 1, h, 1)
    xs = torch.arange(w, dtype=heatmap.dtype).view(1, 1, 1, w)
    total = heatmap.sum([2, 3]).clamp(min=1e-6)
    x = (heatmap * xs).sum([2, 3]) / total
    y = (heatmap * ys).sum([2, 3]) / total
    return (torch.stack([x, y], -1) + 0.5) / torch.tensor([w, h], dtype=heatmap.dtype)


def gaussian(points, size, radius):
    # Pixel loop, as FaRL's p2i kernel paints: exp(-r^2 * 16 / (2 R^2)) for r <= R.
    n, k, _ = points.shape
    out = torch.zeros(n, k, size, size, dtype=torch.float64)
    px = points.double() * size - 0.5
    for b in range(n):
        for j in range(k):
            cx, cy = px[b, j].tolist()
            for y in range(size):
                for x in range(size):
                    r = ((x - cx) ** 2 + (y - cy) ** 2) ** 0.5
                    if r <= radius:
                        out[b, j, y, x] = math.exp(-r * r * 16 / 2 / radius / radius)
    return out.to(points.dtype)


def run(d, name, case):
    model = DenseHead(case["in_channels"], case["vit"], case["channels"], case["out_channels"])
    weights = load_file(f"{d}/{name}.weights.safetensors")
    model.load_state_dict(weights, strict=True)
    inputs = load_file(f"{d}/{name}.inputs.safetensors")
    maps = [inputs[f"map{i}"].clone().requires_grad_(True) for i in range(len(case["in_channels"]))]
    targets = inputs["targets"]

    model.train()
    logits = model(maps)
    points = soft_argmax(logits.sigmoid())
    coord = (targets - points).norm(dim=-1).mean()
    size = case["heatmap_size"]
    resized = F.interpolate(logits, (size, size), mode="bilinear", align_corners=False)
    bce = F.binary_cross_entropy_with_logits(resized, gaussian(targets, size, case["radius"]))
    parsing = F.interpolate(logits, tuple(case["parsing_size"]), mode="bilinear", align_corners=False)
    ce = F.cross_entropy(parsing, inputs["labels"])
    total = bce + coord + ce
    total.backward()

    out = {
        "logits": logits, "points": points, "coord": coord, "bce": bce, "ce": ce,
        **{f"grad.map{i}": m.grad for i, m in enumerate(maps)},
        **{f"grad.{n}": p.grad for n, p in model.named_parameters()},
        **{f"state.{n}": b for n, b in model.named_buffers() if "running" in n},
    }
    model.eval()
    with torch.no_grad():
        out["eval_logits"] = model([m.detach() for m in maps])
    save_file({k: v.detach().contiguous() for k, v in out.items()}, f"{d}/{name}.reference.safetensors")


def main():
    d = sys.argv[1]
    torch.set_grad_enabled(True)
    for name, case in json.load(open(f"{d}/cases.json")).items():
        run(d, name, case)


if __name__ == "__main__":
    main()

"""Reference outputs of LAFS's fViT and its MobileNetV3 landmark network,
PyTorch models written here from the papers' descriptions with LAFS's
parameter names, for plugins/lafs/tests/pytorch_parity.rs.

    python fvit.py DIR    # writes lafs_checkpoint.pth and reference.safetensors
"""
import argparse
import math
import sys

import torch
from safetensors.torch import save_file


def randomise_bn(model):
    # Non-trivial running statistics, so that eval mode is really tested.
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)


# LAFS: MobileNetV3-large (Howard et al. 2019, Table 1) as LAFS's landmark
# network lays it out, then fViT, a ViT on patches sampled at landmarks.
MOBILENET_V3_LARGE = [  # kernel, expansion, out, squeeze-excite, hard-swish, stride
    (3, 16, 16, False, False, 1), (3, 64, 24, False, False, 2), (3, 72, 24, False, False, 1),
    (5, 72, 40, True, False, 2), (5, 120, 40, True, False, 1), (5, 120, 40, True, False, 1),
    (3, 240, 80, False, True, 2), (3, 200, 80, False, True, 1), (3, 184, 80, False, True, 1),
    (3, 184, 80, False, True, 1), (3, 480, 112, True, True, 1), (3, 672, 112, True, True, 1),
    (5, 672, 160, True, True, 2), (5, 960, 160, True, True, 1), (5, 960, 160, True, True, 1),
]


def round8(x):
    return int(math.ceil(x / 8) * 8)


class Excite(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.fc = torch.nn.Sequential(
            torch.nn.Linear(c, c // 4, bias=False), torch.nn.ReLU(), torch.nn.Linear(c // 4, c, bias=False)
        )

    def forward(self, x):
        return x * torch.nn.functional.hardsigmoid(self.fc(x.mean((2, 3))))[:, :, None, None]


class InvertedResidual(torch.nn.Module):
    def __init__(self, c_in, k, exp, c_out, se, hs, stride):
        super().__init__()
        act = torch.nn.Hardswish if hs else torch.nn.ReLU
        nn = torch.nn
        self.residual = stride == 1 and c_in == c_out
        self.conv = nn.Sequential(
            nn.Conv2d(c_in, exp, 1, bias=False), nn.BatchNorm2d(exp), act(),
            nn.Conv2d(exp, exp, k, stride, k // 2, groups=exp, bias=False), nn.BatchNorm2d(exp),
            Excite(exp) if se else nn.Identity(), act(),
            nn.Conv2d(exp, c_out, 1, bias=False), nn.BatchNorm2d(c_out),
        )

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


class LandmarkTrunk(torch.nn.Module):
    def __init__(self, width):
        super().__init__()
        nn = torch.nn
        layers = [nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.Hardswish())]
        c = 16
        for k, exp, out, se, hs, s in MOBILENET_V3_LARGE:
            layers.append(InvertedResidual(c, k, round8(exp * width), round8(out * width), se, hs, s))
            c = round8(out * width)
        self.features = nn.Sequential(*layers)
        self.channels = c

    def forward(self, x):
        return self.features(x)


class PreNorm(torch.nn.Module):
    def __init__(self, dim, fn):
        super().__init__()
        self.norm, self.fn = torch.nn.LayerNorm(dim), fn

    def forward(self, x):
        return self.fn(self.norm(x))


class Residual(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return x + self.fn(x)


class MultiHead(torch.nn.Module):
    def __init__(self, dim, heads, head_dim, scale):
        super().__init__()
        self.heads, self.scale = heads, scale
        self.to_qkv = torch.nn.Linear(dim, 3 * heads * head_dim, bias=False)
        self.to_out = torch.nn.Sequential(torch.nn.Linear(heads * head_dim, dim), torch.nn.Dropout(0.0))

    def forward(self, x):
        b, n, _ = x.shape
        q, k, v = (t.reshape(b, n, self.heads, -1).transpose(1, 2) for t in self.to_qkv(x).chunk(3, dim=-1))
        attn = (q @ k.transpose(-1, -2) * self.scale).softmax(-1)
        return self.to_out((attn @ v).transpose(1, 2).reshape(b, n, -1))


class Fvit(torch.nn.Module):
    def __init__(self, side, patch, landmarks, dim, depth, heads, head_dim, mlp, width, scale):
        super().__init__()
        nn = torch.nn
        self.side, self.patch, self.landmarks = side, patch, landmarks
        self.stn = LandmarkTrunk(width)
        self.output_layer = nn.Sequential(nn.Dropout(0.5), nn.Linear(self.stn.channels, 2 * landmarks))
        self.patch_to_embedding = nn.Linear(3 * patch * patch, dim)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.pos_embedding = nn.Parameter(torch.randn(1, landmarks + 1, dim))
        ff = lambda: nn.Sequential(nn.Linear(dim, mlp), nn.GELU(), nn.Dropout(0.0), nn.Linear(mlp, dim), nn.Dropout(0.0))

        class Feed(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = ff()

            def forward(self, x):
                return self.net(x)

        self.transformer = nn.Module()
        self.transformer.layers = nn.ModuleList(
            nn.ModuleList([Residual(PreNorm(dim, MultiHead(dim, heads, head_dim, scale))), Residual(PreNorm(dim, Feed()))])
            for _ in range(depth)
        )
        self.mlp_head = nn.Sequential(nn.LayerNorm(dim))

    def points(self, x):
        raw = self.output_layer(self.stn(x).mean((2, 3)))
        lo, hi = raw.min(1, keepdim=True)[0], raw.max(1, keepdim=True)[0]
        return ((raw - lo) / (hi - lo) * (self.side - 1)).view(len(x), -1, 2)

    def patches(self, x, points):
        # One grid_sample per landmark: offsets -P/2 .. P/2-1 around it,
        # the patch's first axis along x; flattened (x offset, y offset, channel).
        offsets = torch.arange(self.patch, dtype=torch.float32) - self.patch // 2
        ox, oy = torch.meshgrid(offsets, offsets, indexing="ij")
        tokens = []
        for i in range(points.shape[1]):
            px, py = points[:, i, 0, None, None], points[:, i, 1, None, None]
            grid = torch.stack([px + ox, py + oy], -1) / (self.side / 2) - 1
            sampled = torch.nn.functional.grid_sample(x, grid, align_corners=False)  # [B, C, P(x), P(y)]
            tokens.append(sampled.permute(0, 2, 3, 1).flatten(1))
        return torch.stack(tokens, 1)

    def forward_at(self, x, points):
        t = self.patch_to_embedding(self.patches(x, points))
        t = torch.cat([self.cls_token.expand(len(x), -1, -1), t], 1) + self.pos_embedding[:, : t.shape[1] + 1]
        for attn, ff in self.transformer.layers:
            t = ff(attn(t))
        return self.mlp_head(t[:, 0]), t[:, 1:]


@torch.no_grad()
def make(out):
    torch.manual_seed(1)
    side, landmarks, dim = 32, 9, 32
    fvit = Fvit(side, 4, landmarks, dim, depth=2, heads=3, head_dim=8, mlp=48, width=0.25, scale=dim**-0.5)
    randomise_bn(fvit)
    fvit.eval()
    x = torch.rand(2, 3, side, side)
    points = fvit.points(x)
    cls, tokens = fvit.forward_at(x, points)
    sub_cls, sub_tokens = fvit.forward_at(x, points[:, 2:6])
    ref = dict(lafs_x=x, lafs_points=points, lafs_cls=cls, lafs_tokens=tokens, lafs_sub_cls=sub_cls, lafs_sub_tokens=sub_tokens)
    sd = fvit.state_dict()
    # As LAFS's DINO training saves: student under DDP, teacher bare, each
    # wrapped with its DINO head; the teacher a different model here.
    teacher = {k: v + 0.01 if v.is_floating_point() else v for k, v in sd.items()}
    torch.save(
        {
            "student": {**{"module.backbone." + k: v for k, v in sd.items()}, "module.head.last_layer.weight_g": torch.ones(4, 1)},
            "teacher": {**{"backbone." + k: v for k, v in teacher.items()}, "head.last_layer.weight_g": torch.ones(4, 1)},
            "epoch": 3,
            "args": argparse.Namespace(arch="fvit"),
        },
        f"{out}/lafs_checkpoint.pth",
    )
    save_file({k: v.contiguous() for k, v in ref.items()}, f"{out}/reference.safetensors")


if __name__ == "__main__":
    make(sys.argv[1])

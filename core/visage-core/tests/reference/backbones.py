"""Reference outputs of torchvision's ResNet and timm's ViT, and of PyTorch
models written here from the papers' descriptions with the official
parameter names (PCL's FaceCycle, LAFS's fViT and MobileNetV3 landmark
network), for core/visage-core/tests/pytorch_interop.rs.

    python backbones.py make DIR    # writes state dicts, inputs and outputs
    python backbones.py check DIR   # loads Visage's exports into PyTorch
"""
import argparse
import math
import sys

import numpy as np
import timm
import torch
import torchvision
from safetensors.torch import load_file, save_file


def randomise_bn(model):
    # Non-trivial running statistics, so that eval mode is really tested.
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)


def resnet_features(model, x):
    model.fc = torch.nn.Identity()
    return model(x)


class SelfAttention(torch.nn.Module):
    # Written from PCL's description (methods.md), not copied.
    def __init__(self, c):
        super().__init__()
        self.g = torch.nn.Conv2d(c, c, 1)
        self.theta = torch.nn.Conv2d(c, c, 1)
        self.phi = torch.nn.Conv2d(c, c, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        g = self.g(x).view(b, c, -1).softmax(dim=1)
        theta = self.theta(x).view(b, c, -1).softmax(dim=-1).permute(0, 2, 1)
        phi = self.phi(x).view(b, c, -1)
        return torch.nn.functional.leaky_relu(x + (phi @ theta @ g).view(b, c, h, w), 0.1)


def stage(c_in, mid, c_out, stride, attention):
    lrelu = lambda: torch.nn.LeakyReLU(0.1)
    layers = [torch.nn.Conv2d(c_in, mid, 3, stride, 1), lrelu()]
    if attention:
        layers.append(SelfAttention(mid))
    layers += [torch.nn.Conv2d(mid, c_out, 3, 1, 1), lrelu()]
    return torch.nn.Sequential(*layers)


class ResBlock(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(c, c, 3, 1, 1)
        self.conv2 = torch.nn.Conv2d(c, c, 3, 1, 1)

    def forward(self, x):
        f = torch.nn.functional.leaky_relu
        return f(self.conv2(f(self.conv1(x), 0.1)) + x, 0.1)


class FaceCycle(torch.nn.Module):
    def __init__(self, w=16):
        super().__init__()
        self.conv1 = torch.nn.Sequential(
            torch.nn.Conv2d(3, w, 7, 2, 3), torch.nn.LeakyReLU(0.1), torch.nn.Conv2d(w, w, 3, 1, 1), torch.nn.LeakyReLU(0.1)
        )
        self.layer1 = stage(w, w, w, 1, True)
        self.layer2_1 = stage(w, 2 * w, 2 * w, 2, True)
        self.resblock1 = ResBlock(2 * w)
        self.resblock2 = ResBlock(2 * w)
        self.layer2_2 = stage(2 * w, 2 * w, 2 * w, 2, False)
        self.layer3_1 = stage(2 * w, 4 * w, 2 * w, 2, False)
        self.layer3_2_exp = stage(2 * w, 2 * w, 2 * w, 1, False)
        self.layer3_2_pose = stage(2 * w, 2 * w, 2 * w, 1, False)

    def forward(self, x):
        t = self.layer2_2(self.resblock2(self.resblock1(self.layer2_1(self.layer1(self.conv1(x))))))
        fea = self.layer3_1(t)
        n = x.shape[0]
        return fea.view(n, -1), self.layer3_2_exp(fea).view(n, -1), self.layer3_2_pose(fea).view(n, -1)


def mae_sincos(dim, grid):
    # MAE's get_2d_sincos_pos_embed, with the class token row.
    gh = np.arange(grid, dtype=np.float64)
    gw = np.arange(grid, dtype=np.float64)
    g = np.stack(np.meshgrid(gw, gh), axis=0).reshape(2, 1, grid, grid)

    def one_d(d, pos):
        omega = np.arange(d // 2, dtype=np.float64) / (d / 2.0)
        omega = 1.0 / 10000**omega
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    emb = np.concatenate([one_d(dim // 2, g[0]), one_d(dim // 2, g[1])], axis=1)
    return torch.from_numpy(np.concatenate([np.zeros([1, dim]), emb], axis=0)).float().unsqueeze(0)


def vit_masked(model, x, keep):
    t = model.patch_embed(x) + model.pos_embed[:, 1:, :]
    t = torch.gather(t, 1, keep.unsqueeze(-1).expand(-1, -1, t.shape[-1]))
    cls = (model.cls_token + model.pos_embed[:, :1, :]).expand(t.shape[0], -1, -1)
    t = torch.cat([cls, t], dim=1)
    for blk in model.blocks:
        t = blk(t)
    return model.norm(t)


@torch.no_grad()
def make(out):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 64)
    ref = {"x": x}
    for depth, ctor in [(18, torchvision.models.resnet18), (50, torchvision.models.resnet50)]:
        m = ctor()
        randomise_bn(m)
        m.eval()
        sd = m.state_dict()
        torch.save(sd, f"{out}/resnet{depth}.pth")
        ref[f"resnet{depth}"] = resnet_features(m, x)
        if depth == 18:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                ref["resnet18_bf16"] = resnet_features(m, x).float()
        if depth == 18:
            # As MoCo v3 stores its encoder.
            moco = {"module.base_encoder." + k: v for k, v in sd.items()}
            moco["module.predictor.0.weight"] = torch.zeros(4, 4)
            save_file({k: v.contiguous() for k, v in moco.items()}, f"{out}/moco_resnet18.safetensors")
    vit = timm.models.vision_transformer.VisionTransformer(
        img_size=64, patch_size=16, embed_dim=192, depth=2, num_heads=3, num_classes=0
    )
    vit.eval()
    torch.save(vit.state_dict(), f"{out}/vit.pth")
    # As MAE saves a checkpoint: nested, with non-tensor objects around it.
    nested = {
        "model": vit.state_dict(),
        "epoch": 7,
        "args": argparse.Namespace(lr=1.5e-4, mask_ratio=0.75, name="mae"),
        "scaler": {"scale": 65536.0, "growth_tracker": 0},
        "half": vit.cls_token.detach().half(),
    }
    torch.save(nested, f"{out}/vit_mae_checkpoint.pth")
    tokens = vit.forward_features(x)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        ref["vit_tokens_bf16"] = vit.forward_features(x).float()
    ref["vit_cls"] = tokens[:, 0]
    ref["vit_tokens"] = tokens[:, 1:]
    keep = torch.tensor([[0, 3, 5, 15], [2, 7, 8, 9]])
    masked = vit_masked(vit, x, keep)
    ref["vit_keep"] = keep
    ref["vit_masked_cls"] = masked[:, 0]
    ref["vit_masked_tokens"] = masked[:, 1:]
    ref["sincos_192_4"] = mae_sincos(192, 4)
    fc = FaceCycle(16).eval()
    # As PCL's training script saves it: DataParallel around the model.
    torch.save({"state_dict": {"module.encoder." + k: v for k, v in fc.state_dict().items()}, "epoch": 3}, f"{out}/pcl.pth")
    fea, face, pose = fc(x)
    ref["facecycle_fea"], ref["facecycle_face"], ref["facecycle_pose"] = fea, face, pose
    make_lafs(out, ref)
    make_mcf(out, vit)
    save_file({k: v.contiguous() for k, v in ref.items()}, f"{out}/reference.safetensors")


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


def make_lafs(out, ref):
    torch.manual_seed(1)
    side, landmarks, dim = 32, 9, 32
    fvit = Fvit(side, 4, landmarks, dim, depth=2, heads=3, head_dim=8, mlp=48, width=0.25, scale=dim**-0.5)
    randomise_bn(fvit)
    fvit.eval()
    x = torch.rand(2, 3, side, side)
    points = fvit.points(x)
    cls, tokens = fvit.forward_at(x, points)
    sub_cls, sub_tokens = fvit.forward_at(x, points[:, 2:6])
    ref.update(lafs_x=x, lafs_points=points, lafs_cls=cls, lafs_tokens=tokens, lafs_sub_cls=sub_cls, lafs_sub_tokens=sub_tokens)
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


def make_mcf(out, vit):
    # As MCF's save_model writes: the whole model under `model`, with the
    # online and the EMA target encoder, projector, predictor and the frozen
    # MoCo v3 ViT of the perceptual loss.
    sd = vit.state_dict()
    target = {k: v * 0.5 for k, v in sd.items()}
    model = {
        **{"online_encoder." + k: v for k, v in sd.items()},
        **{"target_encoder." + k: v for k, v in target.items()},
        **{"perceptual_loss.model." + k: v for k, v in sd.items()},
        "online_encoder.fc.0.weight": torch.zeros(8, 192),
        "predictor.0.weight": torch.zeros(8, 8),
        "mask_token": torch.zeros(1, 1, 8),
    }
    torch.save(
        {"model": model, "optimizer": {"state": {}}, "epoch": 15, "scaler": {"scale": 1.0}, "args": argparse.Namespace()},
        f"{out}/mcf_checkpoint.pth",
    )


@torch.no_grad()
def check(out):
    ref = load_file(f"{out}/reference.safetensors")
    m = torchvision.models.resnet18()
    result = m.load_state_dict(load_file(f"{out}/exported_resnet18.safetensors"), strict=False)
    assert sorted(result.missing_keys) == ["fc.bias", "fc.weight"], result
    # tch keeps no num_batches_tracked; nothing else may be unexpected.
    assert result.unexpected_keys == [], result
    m.eval()
    got = resnet_features(m, ref["x"])
    err = (got - ref["resnet18"]).abs().max().item()
    assert err < 1e-4, f"features differ by {err}"
    print(f"ok: torchvision loads Visage's export; max |diff| {err:.2e}")


if __name__ == "__main__":
    {"make": make, "check": check}[sys.argv[1]](sys.argv[2])

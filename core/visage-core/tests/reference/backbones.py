"""Reference outputs of torchvision's ResNet and timm's ViT, and MoCo v3,
MAE and MCF checkpoints around them, for
core/visage-core/tests/pytorch_interop.rs. (The paper-specific backbones'
references are their plugins': plugins/*/tests/reference.)

    python backbones.py make DIR    # writes state dicts, inputs and outputs
    python backbones.py check DIR   # loads Visage's exports into PyTorch
"""
import argparse
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
            # As MoCo v3 releases its checkpoints: `.pth.tar`, nested.
            torch.save(
                {"epoch": 100, "arch": "resnet18", "state_dict": moco, "optimizer": {"state": {}}},
                f"{out}/moco_resnet18.pth.tar",
            )
            # The format of torch < 1.6, still written on request.
            torch.save(sd, f"{out}/resnet18_legacy.pth", _use_new_zipfile_serialization=False)
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
    make_mcf(out, vit)
    save_file({k: v.contiguous() for k, v in ref.items()}, f"{out}/reference.safetensors")


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

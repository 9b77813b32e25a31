"""One MCF step in PyTorch, written here from the paper (Wang et al. 2023,
Sec. 3: masked image modelling on a frozen teacher's features, the mask
contrastive loss, the 1000:1 weighting) and MAE's decoder (He et al. 2022)
for plugins/mcf/tests/method_parity.rs. Not copied from the official code.

    python mcf.py DIR   # writes DIR/mcf.safetensors and DIR/teacher.safetensors

mcf.safetensors holds, under Visage's variable names, the weights of the
online ViT (`backbone.*`, timm's), the EMA target encoder
(`teachers.target_encoder.*`), the frozen MIM teacher
(`teachers.mim_teacher.*`, a deeper ViT: blocks 2, 4, 6, 8 of 8 are the
four MIM layers), the decoder (`method.decoder_*`, `method.mask_token`),
the projector, target projector and predictor; the images `x`; the two
masks `keep_a`, `keep_b` (kept patch indices); the loss terms `mim`
(times 1000), `contrastive` and `loss`; and the gradient of every
trainable parameter `grad.<name>`. teacher.safetensors holds the teacher's
weights under timm's names (what a `teacher: {weights: ...}` loads). The
target encoder and projector hold other weights than the online modules,
as in the middle of training.
"""
import math
import os
import sys
from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file
from timm.models.vision_transformer import Block, VisionTransformer

B, SIDE, PATCH, WIDTH, HEADS = 8, 32, 8, 32, 2
DEC_WIDTH, DEC_DEPTH, DEC_HEADS = 16, 2, 2
HIDDEN, DIM, TAU, MIM_WEIGHT = 64, 16, 0.2, 1000.0
GRID = SIDE // PATCH
L = GRID * GRID
KEEP = int(L * (1 - 0.75))
TEACHER_BLOCKS = [1, 3, 5, 7]  # 0-based: blocks 2, 4, 6, 8 of 8


def vit(depth):
    net = VisionTransformer(img_size=SIDE, patch_size=PATCH, embed_dim=WIDTH, depth=depth, num_heads=HEADS,
                            mlp_ratio=4.0, qkv_bias=True, num_classes=0, global_pool="token")
    with torch.no_grad():  # MAE's init, well conditioned (see moco_v3.py)
        for m in net.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.uniform_(m.bias, -0.1, 0.1)
    return net


def mlp(layers, d_in, hidden, d_out, last_bn):
    mods = []
    for i in range(layers):
        last = i == layers - 1
        mods.append(nn.Linear(d_in if i == 0 else hidden, d_out if last else hidden, bias=False))
        if not last:
            mods += [nn.BatchNorm1d(hidden), nn.ReLU()]
        elif last_bn:
            mods.append(nn.BatchNorm1d(d_out, affine=False))
    return nn.Sequential(*mods)


def sincos(dim, grid):
    """MAE's fixed 2-D sin-cos positions with a zero row for the class
    token: half the channels encode the column (w), half the row (h)."""
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim // 4))
    h, w = torch.meshgrid(torch.arange(grid, dtype=torch.float64), torch.arange(grid, dtype=torch.float64),
                          indexing="ij")

    def emb(pos):
        out = pos.reshape(-1)[:, None] * omega[None]
        return torch.cat([out.sin(), out.cos()], 1)

    table = torch.cat([emb(w), emb(h)], 1)
    return torch.cat([torch.zeros(1, dim, dtype=torch.float64), table]).float()[None]


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.decoder_embed = nn.Linear(WIDTH, DEC_WIDTH)
        self.mask_token = nn.Parameter(torch.randn(1, 1, DEC_WIDTH) * 0.02)
        self.register_buffer("decoder_pos_embed", sincos(DEC_WIDTH, GRID))
        self.decoder_blocks = nn.ModuleList(
            [Block(DEC_WIDTH, DEC_HEADS, 4.0, qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6))
             for _ in range(DEC_DEPTH)])
        self.decoder_norm = nn.LayerNorm(DEC_WIDTH, eps=1e-6)
        self.decoder_pred = nn.Linear(DEC_WIDTH, PATCH * PATCH * 3)

    def forward(self, latent, keep):
        """MAE's unshuffle: visible tokens then mask tokens, reordered by
        the inverse of the permutation (kept patches first)."""
        x = self.decoder_embed(latent)
        n = x.shape[0]
        masked = torch.stack([torch.tensor([i for i in range(L) if i not in set(k.tolist())]) for k in keep])
        ids_restore = torch.argsort(torch.cat([keep, masked], 1), dim=1)
        seq = torch.cat([x[:, 1:], self.mask_token.expand(n, L - keep.shape[1], -1)], 1)
        seq = torch.gather(seq, 1, ids_restore[..., None].expand(-1, -1, DEC_WIDTH))
        x = torch.cat([x[:, :1], seq], 1) + self.decoder_pos_embed
        for blk in self.decoder_blocks:
            x = blk(x)
        return self.decoder_pred(self.decoder_norm(x))[:, 1:]


def encode_masked(net, x, keep):
    """The ViT on the kept patches and the class token, after the final norm."""
    t = net.patch_embed(x) + net.pos_embed[:, 1:]
    t = torch.gather(t, 1, keep[..., None].expand(-1, -1, WIDTH))
    cls = (net.cls_token + net.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
    t = torch.cat([cls, t], 1)
    for blk in net.blocks:
        t = blk(t)
    return net.norm(t)


def block_tokens(net, x, indices):
    """The token sequences (class token first) after the blocks `indices`,
    before the final norm."""
    t = net.patch_embed(x)
    t = torch.cat([net.cls_token.expand(x.shape[0], -1, -1), t], 1) + net.pos_embed
    outs = []
    for i, blk in enumerate(net.blocks):
        t = blk(t)
        if i in indices:
            outs.append(t)
    return outs


def unpatchify(p):
    n = p.shape[0]
    p = p.reshape(n, GRID, GRID, PATCH, PATCH, 3)
    return torch.einsum("nhwpqc->nchpwq", p).reshape(n, 3, SIDE, SIDE)


def ctr(q, k):
    q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
    return F.cross_entropy(q @ k.t() / TAU, torch.arange(q.shape[0])) * 2 * TAU


def jitter(module):
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm1d) and m.affine:
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)


def losses(online, target, teacher, projector, predictor, target_projector, decoder, x, keep_a, keep_b):
    """MCF's two loss terms on images x with the kept patches keep_a
    (online encoder, decoder) and keep_b (target encoder): MIM_WEIGHT *
    L_MIM and L_con (also used by bench/mcf.py)."""
    latent = encode_masked(online, x, keep_a)
    pseudo = unpatchify(decoder(latent, keep_a))
    with torch.no_grad():
        targets = block_tokens(teacher, x, TEACHER_BLOCKS)
    mim = sum(F.mse_loss(F.normalize(p, dim=-1), F.normalize(t, dim=-1))
              for p, t in zip(block_tokens(teacher, pseudo, TEACHER_BLOCKS), targets))
    q = predictor(projector(latent[:, 0]))
    with torch.no_grad():
        k = target_projector(encode_masked(target, x, keep_b)[:, 0])
    return MIM_WEIGHT * mim, ctr(q, k)


def step():
    torch.manual_seed(0)
    online, target, teacher = vit(4), vit(4), vit(8)
    projector, predictor = mlp(2, WIDTH, HIDDEN, DIM, True), mlp(2, DIM, HIDDEN, DIM, False)
    target_projector = mlp(2, WIDTH, HIDDEN, DIM, True)
    decoder = Decoder()
    for m in (projector, predictor, target_projector):
        jitter(m)
    for m in (target, teacher, target_projector):
        for p in m.parameters():
            p.requires_grad_(False)
    for m in (online, target, projector, predictor, target_projector, decoder):
        m.train()
    teacher.eval()

    x = torch.randn(B, 3, SIDE, SIDE)
    keep_a = torch.rand(B, L).argsort(1)[:, :KEEP].sort(1).values
    keep_b = torch.rand(B, L).argsort(1)[:, :KEEP].sort(1).values

    mim, con = losses(online, target, teacher, projector, predictor, target_projector, decoder, x, keep_a, keep_b)
    loss = mim + con
    loss.backward()

    out = {"x": x, "keep_a": keep_a, "keep_b": keep_b, "mim": mim.detach(),
           "contrastive": con.detach(), "loss": loss.detach()}
    named = [("backbone", online), ("teachers.target_encoder", target), ("teachers.mim_teacher", teacher),
             ("method.projector", projector), ("method.predictor", predictor),
             ("method.target_projector", target_projector), ("method", decoder)]
    for prefix, module in named:
        for name, t in module.state_dict().items():
            if not name.endswith("num_batches_tracked"):
                out[f"{prefix}.{name}"] = t.detach().clone()
    for prefix, module in [("backbone", online), ("method.projector", projector),
                           ("method.predictor", predictor), ("method", decoder)]:
        for name, p in module.named_parameters():
            assert p.grad is not None, name
            out[f"grad.{prefix}.{name}"] = p.grad.detach().clone()
    teacher_file = {k: v.detach().clone().contiguous() for k, v in teacher.state_dict().items()}
    return {k: v.contiguous() for k, v in out.items()}, teacher_file


if __name__ == "__main__":
    root = sys.argv[1]
    os.makedirs(root, exist_ok=True)
    torch.set_num_threads(1)
    step_file, teacher_file = step()
    save_file(step_file, os.path.join(root, "mcf.safetensors"))
    save_file(teacher_file, os.path.join(root, "teacher.safetensors"))

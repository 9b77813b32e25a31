"""One PCL iteration in PyTorch, written here from the paper's description
(methods.md) with the official code's parameter names, for
plugins/pcl/tests/method_parity.rs. Not copied from the official code: the
negatives are built explicitly, one anchor's list at a time, where the
Rust side uses Gram-matrix identities.

    python pcl_iteration.py DIR   # writes pcl.pth and reference.safetensors

pcl.pth is saved as PCL's training script saves it: {'state_dict':
DataParallel(model).state_dict(), 'epoch': ...}, so its keys are
'module.encoder.*', 'module.exp_fc.*', 'module.pose_fc.*',
'module.decoder.*'. reference.safetensors holds the batch, the random draws
(noise, Beta coefficients, permutations), the losses of the three steps and
every parameter's gradient in each step, all at the saved weights.
"""
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from facecycle import FaceCycle  # noqa: E402

WIDTH = 8          # FaceCycle width: heads 16 x 4 x 4 = 256-d at 64x64
PROJ_DIM = 32      # projector output (PCL: 512); hidden = input (PCL: 2048)
DEC_WIDTH = 32     # decoder channels after fc (PCL: 512)
DEPTH = 6          # 1x1 -> 64x64
B, K = 4, 3        # images, flipped negatives per image
T, ALPHA, SIGMA = 0.07, 1.6, 0.4


def projector(d_in, d_out):
    # Linear, ReLU, Linear, BatchNorm1d: indices 0, 2, 3 as in the paper's code.
    return torch.nn.Sequential(torch.nn.Linear(d_in, d_in), torch.nn.ReLU(), torch.nn.Linear(d_in, d_out), torch.nn.BatchNorm1d(d_out))


class Decoder(torch.nn.Module):
    """fc to width x 1 x 1; per stage ReLU, 2x bilinear, 3x3 conv, BN but the last; tanh."""

    def __init__(self, d_in, width, depth):
        super().__init__()
        self.width = width
        self.fc = torch.nn.Linear(d_in, width)
        layers, c = [], width
        for i in range(depth):
            out = 3 if i == depth - 1 else (width // 4 if i == depth - 2 else width // 2)
            layers += [torch.nn.ReLU(), torch.nn.Upsample(scale_factor=2, mode="bilinear"), torch.nn.Conv2d(c, out, 3, 1, 1)]
            layers.append(torch.nn.BatchNorm2d(out) if i < depth - 1 else torch.nn.Tanh())
            c = out
        self.model = torch.nn.Sequential(*layers)

    def forward(self, z):
        return self.model(self.fc(z).view(z.shape[0], self.width, 1, 1))


class PCL(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = FaceCycle(WIDTH)
        # The paper's encoder initialisation (PyTorch's default would make the
        # features of different images nearly equal, an ill-posed comparison).
        for m in self.encoder.modules():
            if isinstance(m, torch.nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                torch.nn.init.normal_(m.weight, 0.0, (2.0 / fan_out) ** 0.5)
                torch.nn.init.zeros_(m.bias)
        d = 2 * WIDTH * 16
        self.exp_fc = projector(d, PROJ_DIM)
        self.pose_fc = projector(d, PROJ_DIM)
        self.decoder = Decoder(d, DEC_WIDTH, DEPTH)


def beta(shape):
    g = torch.distributions.Beta(torch.tensor(ALPHA), torch.tensor(ALPHA))
    return g.sample(shape)


def orthogonal(e, p):
    def rows(x):
        x = x - x.mean(0, keepdim=True)
        return x / (x.norm(dim=1, keepdim=True).detach() + 1e-6)
    return (rows(e).t() @ rows(p)).pow(2).mean()


def info_nce(anchors, negatives, lam, perm):
    """anchors [2B, d] (view 1 then view 2); negatives [2B, m, d], one list per anchor."""
    mixed = lam.unsqueeze(2) * negatives + (1 - lam.unsqueeze(2)) * negatives[:, perm]
    u = F.normalize(anchors, dim=1)
    mixed = F.normalize(mixed, dim=2)
    n = u.shape[0]
    pos = (u * torch.cat([u[n // 2:], u[:n // 2]])).sum(1, keepdim=True)
    neg = torch.stack([mixed[i] @ u[i] for i in range(n)])
    logits = torch.cat([pos, neg], 1) / T
    return F.cross_entropy(logits, torch.zeros(n, dtype=torch.long))


def reconstruction(model, x, noise, tanh_output=False):
    xf = x.flip(3)
    _, e_o, p_o = model.encoder(x + noise[0])
    _, e_f, p_f = model.encoder(xf + noise[1])

    def decode(code):
        out = model.decoder(F.normalize(code, dim=1))
        return out if tanh_output else (out + 1) / 2

    rec = (F.l1_loss(decode(e_o + p_f), xf) + F.l1_loss(decode(e_f + p_o), x)
           + F.l1_loss(decode(e_o + p_o), x) + F.l1_loss(decode(e_f + p_f), xf))
    orth = orthogonal(e_o, p_o) + orthogonal(e_f, p_f)
    return rec, orth


def face(model, crops, lam, perm):
    z = model.exp_fc(model.encoder(torch.cat(crops))[1])
    n = z.shape[0]
    lists = [torch.stack([z[j] for j in range(n) if j != i and j != (i + n // 2) % n]) for i in range(n)]
    return info_nce(z, torch.stack(lists), lam, perm)


def pose(model, views, negs, lam, perm, official=False):
    anchors = model.pose_fc(model.encoder(torch.cat(views))[2])
    stacked = model.pose_fc(model.encoder(torch.cat(negs))[2])  # row k * B + b
    if official:
        per_image = torch.stack(stacked.chunk(B))  # the official chunking
    else:
        per_image = torch.stack([torch.stack([stacked[k * B + b] for k in range(K)]) for b in range(B)])
    return info_nce(anchors, per_image.repeat(2, 1, 1), lam.repeat(2, 1), perm)


def grads(model, loss, tag, out):
    model.zero_grad()
    loss.backward()
    for name, p in model.named_parameters():
        if p.grad is not None:
            out[f"grad.{tag}.{name}"] = p.grad.clone()


def make(out_dir):
    torch.manual_seed(0)
    model = PCL().train()
    torch.save({"state_dict": {"module." + k: v for k, v in model.state_dict().items()}, "epoch": 7}, f"{out_dir}/pcl.pth")
    # Snapshot of the weights: each step below starts from them.
    weights = {k: v.clone() for k, v in model.state_dict().items()}

    x = torch.rand(B, 3, 64, 64)
    ref = {
        "x": x,
        "noise0": torch.randn(B, 3, 64, 64) * SIGMA,
        "noise1": torch.randn(B, 3, 64, 64) * SIGMA,
        "crop0": torch.rand(B, 3, 64, 64),
        "crop1": torch.rand(B, 3, 64, 64),
        "view0": torch.rand(B, 3, 64, 64),
        "view1": torch.rand(B, 3, 64, 64),
        "face_lambda": beta((2 * B, 2 * B - 2)),
        "face_perm": torch.randperm(2 * B - 2),
        "pose_lambda": beta((B, K)),
        "pose_perm": torch.randperm(K),
    }
    for k in range(K):
        ref[f"neg{k}"] = torch.rand(B, 3, 64, 64)
    negs = [ref[f"neg{k}"] for k in range(K)]

    with torch.no_grad():
        fea, _, _ = model.encoder(x)
        ref["fea"] = fea

    rec, orth = reconstruction(model, x, (ref["noise0"], ref["noise1"]))
    ref["loss.reconstruction"], ref["loss.orthogonal"] = rec.detach(), orth.detach()
    grads(model, rec + orth, "reconstruction", ref)
    model.load_state_dict(weights)

    loss = face(model, [ref["crop0"], ref["crop1"]], ref["face_lambda"], ref["face_perm"])
    ref["loss.face"] = loss.detach()
    grads(model, loss, "face", ref)
    model.load_state_dict(weights)

    loss = pose(model, [ref["view0"], ref["view1"]], negs, ref["pose_lambda"], ref["pose_perm"])
    ref["loss.pose"] = loss.detach()
    grads(model, loss, "pose", ref)
    model.load_state_dict(weights)

    with torch.no_grad():
        ref["loss.reconstruction_tanh"] = reconstruction(model, x, (ref["noise0"], ref["noise1"]), tanh_output=True)[0]
        model.load_state_dict(weights)
        ref["loss.pose_official"] = pose(model, [ref["view0"], ref["view1"]], negs, ref["pose_lambda"], ref["pose_perm"], official=True)

    save_file({k: v.detach().contiguous() for k, v in ref.items()}, f"{out_dir}/reference.safetensors")


if __name__ == "__main__":
    make(sys.argv[1])

"""One MoCo v3 step in PyTorch, written here from the paper (Chen, Xie and
He 2021, Algorithm 1 and Sec. 3) for plugins/moco/tests/method_parity.rs.
Not copied from the official code.

    python moco_v3.py DIR   # writes DIR/{vit,resnet}.safetensors

Each file holds, under Visage's variable names, the weights of the online
backbone (`backbone.*`, timm's ViT or torchvision's ResNet-18), its
momentum copy (`teachers.momentum_encoder.*`), the projector
(`method.projector.*`), its momentum copy (`method.momentum_projector.*`)
and the predictor (`method.predictor.*`); the two views `x1`, `x2`; the
loss `loss`; and the gradient of every trainable parameter `grad.<name>`.
The momentum copies hold other weights than the online modules, as in the
middle of training, so that keys that came from the online modules would
show.
"""
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

B, SIDE, HIDDEN, DIM, TAU = 8, 32, 64, 16, 0.2


def mlp(layers, d_in, hidden, d_out, last_bn):
    """Linear (no bias), then BN and ReLU between layers; an affine-free BN
    after the last one when last_bn."""
    mods = []
    for i in range(layers):
        last = i == layers - 1
        mods.append(torch.nn.Linear(d_in if i == 0 else hidden, d_out if last else hidden, bias=False))
        if not last:
            mods += [torch.nn.BatchNorm1d(hidden), torch.nn.ReLU()]
        elif last_bn:
            mods.append(torch.nn.BatchNorm1d(d_out, affine=False))
    return torch.nn.Sequential(*mods)


def ctr(q, k):
    """InfoNCE of q against k, positives on the diagonal, times 2 tau."""
    q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
    logits = q @ k.t() / TAU
    return F.cross_entropy(logits, torch.arange(q.shape[0])) * 2 * TAU


def backbone(arch):
    if arch == "vit":
        import timm
        net = timm.models.vision_transformer.VisionTransformer(
            img_size=SIDE, patch_size=8, embed_dim=32, depth=2, num_heads=2, mlp_ratio=4.0,
            qkv_bias=True, num_classes=0, global_pool="token")
        moco_init(net)
        return net
    import torchvision
    return torchvision.models.resnet18(num_classes=1000)


def moco_init(net):
    """MoCo v3's ViT initialisation (the paper's appendix, as MAE's): Xavier
    uniform linear weights. timm's N(0, 0.02) makes the class tokens of
    different images nearly equal, and the projector's batch norm then
    divides by a tiny spread: an ill-conditioned step whose fp32 rounding
    alone exceeds 1e-5."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Linear):
                torch.nn.init.xavier_uniform_(m.weight)
                torch.nn.init.uniform_(m.bias, -0.1, 0.1)


def width(arch, net):
    if arch == "vit":
        return net.embed_dim
    d = net.fc.in_features
    net.fc = torch.nn.Identity()
    return d


def jitter(module):
    """Non-trivial BN affine parameters (PyTorch starts them at 1 and 0)."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm1d) and m.affine:
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)


def step(arch):
    torch.manual_seed(0 if arch == "vit" else 1)
    vit = arch == "vit"
    net = backbone(arch)
    d = width(arch, net)
    projector = mlp(3 if vit else 2, d, HIDDEN, DIM, True)
    predictor = mlp(2, DIM, HIDDEN, DIM, vit)
    # The momentum encoder: other weights (mid-training), no gradient.
    m_net = backbone(arch)
    width(arch, m_net)
    m_projector = mlp(3 if vit else 2, d, HIDDEN, DIM, True)
    for m in (projector, predictor, m_projector):
        jitter(m)
    for p in list(m_net.parameters()) + list(m_projector.parameters()):
        p.requires_grad_(False)
    for m in (net, projector, predictor, m_net, m_projector):
        m.train()

    x1 = torch.randn(B, 3, SIDE, SIDE)
    x2 = torch.randn(B, 3, SIDE, SIDE)
    q1 = predictor(projector(net(x1)))
    q2 = predictor(projector(net(x2)))
    with torch.no_grad():
        k1 = m_projector(m_net(x1))
        k2 = m_projector(m_net(x2))
    loss = ctr(q1, k2) + ctr(q2, k1)
    loss.backward()

    out = {"x1": x1, "x2": x2, "loss": loss.detach()}
    named = [("backbone", net), ("teachers.momentum_encoder", m_net), ("method.projector", projector),
             ("method.momentum_projector", m_projector), ("method.predictor", predictor)]
    for prefix, module in named:
        for name, t in module.state_dict().items():
            if not name.endswith("num_batches_tracked"):
                out[f"{prefix}.{name}"] = t.detach().clone()
    # The weights as they were before this step's BN running-stat updates
    # do not matter: every BN here normalises with the batch's statistics.
    for prefix, module in [("backbone", net), ("method.projector", projector), ("method.predictor", predictor)]:
        for name, p in module.named_parameters():
            assert p.grad is not None, name
            out[f"grad.{prefix}.{name}"] = p.grad.detach().clone()
    return {k: v.contiguous() for k, v in out.items()}


if __name__ == "__main__":
    root = sys.argv[1]
    os.makedirs(root, exist_ok=True)
    torch.set_num_threads(1)
    for arch in ("vit", "resnet"):
        save_file(step(arch), os.path.join(root, f"{arch}.safetensors"))

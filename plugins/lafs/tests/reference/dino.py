"""Reference DINO head and loss for plugins/lafs/tests/dino_parity.rs,
written here from the DINO paper (Caron et al., 2021, Algorithm 1 and
section 3) and LAFS (Sun et al., CVPR 2024), in float64:

- head: Linear-GELU-Linear-GELU-Linear to the bottleneck, L2 normalisation,
  then a weight-normalised Linear without bias (torch's parametrization
  `weight_norm`, dim 0: W = g v / |v| per output row); DINO fixes g at 1
  (`norm_last_layer`), and a second head trains g;
- loss: teacher outputs centred by c and sharpened at T_t, student outputs
  at T_s, cross-entropy summed over (teacher global view, student view)
  pairs of different views, divided by the number of pairs; after the step
  c <- m c + (1 - m) mean(teacher outputs);
- the teacher temperature's warm-up: linear from 0.07 to 0.04 (LAFS) over
  30 epochs endpoints included (numpy's linspace), then 0.04.

    python dino.py DIR    # writes DIR/dino.safetensors
"""
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

D, HIDDEN, BOTTLENECK, K = 16, 24, 8, 32
N, LOCAL = 4, 3
T_STUDENT, CENTER_MOMENTUM = 0.1, 0.9
T_TEACHER = (0.07, 0.0625)


class Head(nn.Module):
    def __init__(self, fixed_norm):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(D, HIDDEN), nn.GELU(), nn.Linear(HIDDEN, HIDDEN), nn.GELU(), nn.Linear(HIDDEN, BOTTLENECK)
        )
        self.last_layer = nn.utils.parametrizations.weight_norm(nn.Linear(BOTTLENECK, K, bias=False), dim=0)
        g = self.last_layer.parametrizations.weight.original0
        with torch.no_grad():
            if fixed_norm:
                g.fill_(1.0)
            else:
                g.uniform_(0.5, 2.0)
        g.requires_grad_(not fixed_norm)

    def forward(self, x):
        return self.last_layer(F.normalize(self.mlp(x), dim=-1, p=2))

    def state(self, prefix):
        """DINO's checkpoint names (the old weight_norm's weight_g, weight_v)."""
        out = {}
        for name, t in self.named_parameters():
            name = name.replace("parametrizations.weight.original0", "weight_g")
            name = name.replace("parametrizations.weight.original1", "weight_v")
            out[prefix + name] = t.detach().clone()
        return out


def dino_loss(student, teacher, center, t_teacher):
    s = [F.log_softmax(z / T_STUDENT, dim=-1) for z in student.chunk(2 + LOCAL)]
    q = [F.softmax((z - center) / t_teacher, dim=-1).detach() for z in teacher.chunk(2)]
    terms = [(-qi * sj).sum(-1).mean() for i, qi in enumerate(q) for j, sj in enumerate(s) if i != j]
    return sum(terms) / len(terms)


def next_center(center, teacher):
    return center * CENTER_MOMENTUM + teacher.mean(0, keepdim=True) * (1 - CENTER_MOMENTUM)


def main(out):
    torch.manual_seed(0)
    student, teacher, free = Head(True), Head(True), Head(False)
    # Drawn in float32, computed in float64: both sides see the same numbers.
    for m in (student, teacher, free):
        m.double()
    xs = torch.randn((2 + LOCAL) * N, D).double().requires_grad_(True)
    xt = torch.randn(2 * N, D).double()
    center0 = (torch.randn(1, K) * 0.5).double()
    tensors = {"xs": xs.detach().clone(), "xt": xt, "center0": center0}
    for prefix, m in (("student.", student), ("teacher.", teacher), ("free.", free)):
        tensors.update(m.state(prefix))

    out_s, out_t = student(xs), teacher(xt).detach()
    loss1 = dino_loss(out_s, out_t, center0, T_TEACHER[0])
    loss1.backward()
    center1 = next_center(center0, out_t)
    loss2 = dino_loss(out_s.detach(), out_t, center1, T_TEACHER[1])
    center2 = next_center(center1, out_t)
    tensors.update(
        {
            "student_out": out_s.detach(),
            "teacher_out": out_t,
            "loss1": loss1.detach().reshape(1),
            "center1": center1,
            "loss2": loss2.reshape(1),
            "center2": center2,
            "grad_xs": xs.grad,
        }
    )
    for name, p in student.named_parameters():
        if p.requires_grad:
            name = name.replace("parametrizations.weight.original1", "weight_v")
            tensors["grad.student." + name] = p.grad
    assert student.last_layer.parametrizations.weight.original0.grad is None

    # A head whose norm is trained: the gradient reaches g.
    loss_free = dino_loss(free(xs.detach()), out_t, center0, T_TEACHER[0])
    loss_free.backward()
    w = free.last_layer.parametrizations.weight
    tensors.update(
        {
            "free_loss": loss_free.detach().reshape(1),
            "grad.free.last_layer.weight_g": w.original0.grad,
            "grad.free.last_layer.weight_v": w.original1.grad,
        }
    )
    # DINO's per-epoch teacher temperature: warm-up 0.07 -> 0.04 over 30 of 100 epochs.
    schedule = np.concatenate((np.linspace(0.07, 0.04, 30), np.ones(70) * 0.04))
    tensors["teacher_temperature"] = torch.from_numpy(schedule)
    save_file({k: v.contiguous() for k, v in tensors.items()}, f"{out}/dino.safetensors")


if __name__ == "__main__":
    main(sys.argv[1])

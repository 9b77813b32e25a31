"""PyTorch side of bench/lafs: images/s of full LAFS (DINO) iterations at
the same sizes, batch and thread count as plugins/lafs/examples/
lafs_bench.rs: the landmark network's points on every view (frozen, eval,
no gradient), jittered; the student fViT and DINO head on the 2 global
views with every point and the N local views with a random subset; the EMA
teacher (fViT and head) on the global views; the DINO loss with centring;
backward, gradient clipping at 3, AdamW step, EMA update, centre update.

    python bench/lafs.py PRESET BATCH STEPS THREADS

The fViT (with its MobileNetV3 landmark network) is plugins/lafs/tests/
reference/fvit.py's and the head and loss are plugins/lafs/tests/
reference/dino.py's, the modules the parity tests hold Visage to, imported
and resized through their constructors and module constants. fvit.py
samples a view's patches with one grid_sample per landmark (for clarity);
here they are sampled in one call, as Visage does (equal values, checked
on the first iteration), so the reference is not slowed by the loop.
Without dropout or drop path on either side (the reference has none).
AdamW (weight decay 0.04 on weights of dimension 2 and up, as Visage's
groups), torch's CPU default implementation; the EMA one parameter at a
time, as DINO's code. Random images (one batch, reused). One warm-up
iteration, then STEPS timed ones; prints one JSON line.
"""
import copy
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "plugins", "lafs", "tests", "reference"))
import dino  # noqa: E402
import fvit as reference  # noqa: E402

# name: fViT (side, patch, landmarks, dim, depth, heads, head_dim, mlp, landmark width, attention scale),
# head (hidden, bottleneck, out), local views, local tokens, with replacement, jitter, lr
PRESETS = {
    "paper": ((112, 8, 196, 768, 12, 11, 64, 2048, 1.0, 768 ** -0.5), (2048, 256, 100000), 8, 36, True, 5.0,
              0.0003203125),
    "default": ((32, 4, 68, 64, 4, 4, 16, 128, 0.25, 16 ** -0.5), (256, 64, 1024), 4, 16, False, 1.5, 0.0002),
}
MOMENTUM, T_TEACHER, CLIP = 0.996, 0.04, 3.0


class Fvit(reference.Fvit):
    """fvit.py's fViT, every patch of a view sampled in one grid_sample."""

    def patches(self, x, points):
        n, k, p = points.shape[0], points.shape[1], self.patch
        offsets = torch.arange(p, dtype=torch.float32) - p // 2
        px = (points[..., 0, None, None] + offsets[:, None]).expand(n, k, p, p)
        py = (points[..., 1, None, None] + offsets[None, :]).expand(n, k, p, p)
        grid = (torch.stack([px, py], -1) / (self.side / 2) - 1).reshape(n, k * p, p, 2)
        sampled = F.grid_sample(x, grid, align_corners=False)  # [N, C, K*P(x), P(y)]
        return sampled.view(n, -1, k, p, p).permute(0, 2, 3, 4, 1).reshape(n, k, -1)


def build(preset):
    net, (hidden, bottleneck, out), _, _, _, _, lr = PRESETS[preset]
    student = Fvit(*net).train()
    student.stn.eval()  # the frozen landmark network: batch-norm statistics as in eval
    student.output_layer.eval()
    dino.D, dino.HIDDEN, dino.BOTTLENECK, dino.K = net[3], hidden, bottleneck, out
    head = dino.Head(True)
    teacher, teacher_head = copy.deepcopy(student), copy.deepcopy(head)
    for p in list(teacher.parameters()) + list(teacher_head.parameters()):
        p.requires_grad_(False)
    trained = [p for m in (student, head) for p in m.parameters() if p.requires_grad]
    groups = [{"params": [p for p in trained if p.dim() > 1], "weight_decay": 0.04},
              {"params": [p for p in trained if p.dim() <= 1], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=lr)
    return (student, head, teacher, teacher_head), opt


def view_points(student, x, tokens, with_replacement, jitter):
    """The landmark network's points, jittered, subsampled to `tokens` when given."""
    with torch.no_grad():
        points = student.points(x)
    points = points + torch.randn_like(points) * jitter
    if tokens is None:
        return points
    n, k = points.shape[:2]
    idx = torch.randint(k, (n, tokens)) if with_replacement else torch.rand(n, k).argsort(1)[:, :tokens]
    return torch.gather(points, 1, idx[..., None].expand(-1, -1, 2))


def iteration(models, opt, center, globals_, locals_, preset):
    student, head, teacher, teacher_head = models
    _, _, _, local_tokens, with_replacement, jitter, _ = PRESETS[preset]
    g = torch.cat(globals_)
    gp = torch.cat([view_points(student, v, None, with_replacement, jitter) for v in globals_])
    lo = torch.cat(locals_)
    lp = torch.cat([view_points(student, v, local_tokens, with_replacement, jitter) for v in locals_])
    opt.zero_grad()
    out_s = head(torch.cat([student.forward_at(g, gp)[0], student.forward_at(lo, lp)[0]]))
    with torch.no_grad():
        out_t = teacher_head(teacher.forward_at(g, gp)[0])
    loss = dino.dino_loss(out_s, out_t, center, T_TEACHER)
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for group in opt.param_groups for p in group["params"]], CLIP)
    opt.step()
    with torch.no_grad():
        for target, online in ((teacher, student), (teacher_head, head)):
            for t, o in zip(target.parameters(), online.parameters()):
                t.mul_(MOMENTUM).add_(o.detach(), alpha=1 - MOMENTUM)
    return loss.item(), dino.next_center(center, out_t)


def check_patches(student, x):
    """The one-call sampling equals fvit.py's loop."""
    points = view_points(student, x, None, False, 1.0)
    diff = (student.patches(x, points) - reference.Fvit.patches(student, x, points)).abs().max().item()
    assert diff < 1e-5, f"vectorised patches differ from fvit.py's by {diff}"


def main(preset, batch, steps, threads):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    models, opt = build(preset)
    side, local_views = PRESETS[preset][0][0], PRESETS[preset][2]
    dino.LOCAL = local_views
    images = [torch.rand(batch, 3, side, side) for _ in range(2 + local_views)]
    globals_, locals_ = images[:2], images[2:]
    check_patches(models[0], globals_[0])
    center = torch.zeros(1, dino.K)
    _, center = iteration(models, opt, center, globals_, locals_, preset)  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        _, center = iteration(models, opt, center, globals_, locals_, preset)
    seconds = time.perf_counter() - start
    print(json.dumps({"side": "pytorch", "preset": preset, "mode": "tensors", "batch": batch, "steps": steps,
                      "threads": threads, "seconds": round(seconds, 3), "images_per_s": batch * steps / seconds}))


if __name__ == "__main__":
    a = sys.argv[1:]
    if len(a) != 4:
        raise SystemExit(__doc__)
    main(a[0], *map(int, a[1:]))

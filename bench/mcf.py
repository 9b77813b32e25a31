"""PyTorch side of bench/mcf: images/s of full MCF iterations (zero_grad,
the two losses, backward, AdamW step, EMA update of the target encoder and
projector) at the same sizes, batch and thread count as
plugins/mcf/examples/mcf_bench.rs.

    python bench/mcf.py PRESET BATCH STEPS THREADS

The model (timm's ViT as online, target and frozen teacher; MAE's decoder;
the MoCo v3 MLPs) and the losses are those of plugins/mcf/tests/reference/
mcf.py, the step the parity test holds Visage to, imported and resized
through its module constants. AdamW as the experiments set it (betas 0.9,
0.95, weight decay 0.05 on weights of dimension 2 and up, as Visage's
groups), torch's CPU default implementation; the EMA at 0.99 one
parameter at a time, as MoCo v3's code. Random images (one batch, reused),
fresh masks each iteration. One warm-up iteration, then STEPS timed ones;
prints one JSON line.
"""
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "plugins", "mcf", "tests", "reference"))
import mcf as ref  # noqa: E402

# name: (side, patch, width, heads, depth, decoder (width, depth, heads), hidden, dim, teacher blocks 0-based, lr)
PRESETS = {
    "paper": (224, 16, 768, 12, 12, (512, 8, 16), 4096, 256, [2, 5, 8, 11], 0.0024),
    "default": (64, 8, 192, 3, 4, (128, 2, 4), 512, 128, [0, 1, 2, 3], 0.001),
}
MASK_RATIO, MOMENTUM = 0.75, 0.99


def build(preset):
    side, patch, width, heads, depth, dec, hidden, dim, blocks, lr = PRESETS[preset]
    ref.SIDE, ref.PATCH, ref.WIDTH, ref.HEADS = side, patch, width, heads
    ref.DEC_WIDTH, ref.DEC_DEPTH, ref.DEC_HEADS = dec
    ref.HIDDEN, ref.DIM, ref.TEACHER_BLOCKS = hidden, dim, blocks
    ref.GRID = side // patch
    ref.L = ref.GRID * ref.GRID
    ref.KEEP = int(ref.L * (1 - MASK_RATIO))
    online, target, teacher = ref.vit(depth), ref.vit(depth), ref.vit(depth)
    target.load_state_dict(online.state_dict())
    projector = ref.mlp(2, width, hidden, dim, True)
    predictor = ref.mlp(2, dim, hidden, dim, False)
    target_projector = ref.mlp(2, width, hidden, dim, True)
    target_projector.load_state_dict(projector.state_dict())
    decoder = ref.Decoder()
    for m in (target, teacher, target_projector):
        for p in m.parameters():
            p.requires_grad_(False)
    for m in (online, target, projector, predictor, target_projector, decoder):
        m.train()
    teacher.eval()
    modules = (online, target, teacher, projector, predictor, target_projector, decoder)
    trained = [p for m in (online, projector, predictor, decoder) for p in m.parameters()]
    groups = [{"params": [p for p in trained if p.dim() > 1], "weight_decay": 0.05},
              {"params": [p for p in trained if p.dim() <= 1], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95))
    emas = [(target, online), (target_projector, projector)]
    return modules, opt, emas


def masks(n):
    return [torch.rand(n, ref.L).argsort(1)[:, :ref.KEEP].sort(1).values for _ in range(2)]


def iteration(modules, opt, emas, x):
    opt.zero_grad()
    mim, con = ref.losses(*modules, x, *masks(x.shape[0]))
    (mim + con).backward()
    opt.step()
    with torch.no_grad():
        for target, online in emas:
            for t, o in zip(target.parameters(), online.parameters()):
                t.mul_(MOMENTUM).add_(o.detach(), alpha=1 - MOMENTUM)
    return mim.item(), con.item()


def main(preset, batch, steps, threads):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    modules, opt, emas = build(preset)
    x = torch.rand(batch, 3, ref.SIDE, ref.SIDE)
    iteration(modules, opt, emas, x)  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        iteration(modules, opt, emas, x)
    seconds = time.perf_counter() - start
    print(json.dumps({"side": "pytorch", "preset": preset, "mode": "tensors", "batch": batch, "steps": steps,
                      "threads": threads, "seconds": round(seconds, 3), "images_per_s": batch * steps / seconds}))


if __name__ == "__main__":
    a = sys.argv[1:]
    if len(a) != 4:
        raise SystemExit(__doc__)
    main(a[0], *map(int, a[1:]))

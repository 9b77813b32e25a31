"""PyTorch side of bench/pcl: images/s of full PCL iterations (three
optimiser steps, each zero_grad, backward and Adam step) at the same sizes,
batch and thread count as plugins/pcl/examples/pcl_bench.rs.

    python bench/pcl.py PRESET BATCH STEPS THREADS [DIR WORKERS [data]]

The model (FaceCycle, exp_fc, pose_fc, decoder) and the reconstruction and
orthogonal losses are imported from plugins/pcl/tests/reference/
pcl_iteration.py, the PyTorch iteration the parity test holds Visage to.
Its contrastive losses build each anchor's negatives in a Python loop (for
clarity); here they are built as whole tensors, as the official code does
(an [n, m, d] tensor of mixed negatives and one bmm), so the reference is
not slowed by the loop. As there, the encoder runs separately on the image
and its flip, and on the pose views and the negatives, and the decoder
once per code pair.

Without DIR the batch is random tensors; with DIR a torchvision DataLoader
(WORKERS processes) reads the JPEGs under DIR with transforms equivalent to
Visage's (experiments/paper/pcl_base.yaml): resize to 64 on decoding; the
clean image; two DistanceCrop views (written here from the paper: two
0.4H x 0.4W crops centred in two different random quadrants), each resized
to 64; two views of the image; K views of its flip; every view then colour
jitter (0.8, 0.8, 0.8, 0.2) p 0.8, grayscale p 0.2, Gaussian blur (7, sigma
0.1-2) p 0.8, Sobel gradient magnitude p 0.6; with `data` too, only the
DataLoader runs (STEPS batches, no model). One warm-up iteration (batch),
then STEPS timed ones; prints one JSON line.
"""
import json
import os
import random
import sys
import time

import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "plugins", "pcl", "tests", "reference"))
import pcl_iteration as ref  # noqa: E402

SIDE = 64
# name: (width, negatives K, projector_dim, decoder_width, pose batch or None for the whole batch)
PRESETS = {
    "paper": (64, 10, 512, 512, 10),
    "default": (16, 2, 128, 64, None),
}


def build(preset):
    width, k, proj, dec, pose_batch = PRESETS[preset]
    ref.WIDTH, ref.PROJ_DIM, ref.DEC_WIDTH, ref.K = width, proj, dec, k
    return ref.PCL().train(), k, pose_batch


def mixed_info_nce(anchors, negatives, lam=None, perm=None):
    """anchors [n, d] (view 1 then view 2), negatives [n, m, d]: Beta-mixed
    negatives (coefficients lam [n, m], one permutation perm for all
    anchors; drawn when not given), cosine logits, InfoNCE."""
    n, m, _ = negatives.shape
    if lam is None:
        lam, perm = ref.beta((n, m)), torch.randperm(m)
    lam = lam.unsqueeze(2)
    mixed = lam * negatives + (1 - lam) * negatives[:, perm]
    u = F.normalize(anchors, dim=1)
    mixed = F.normalize(mixed, dim=2)
    q, k = u.chunk(2)
    pos = torch.cat([(q * k).sum(1), (k * q).sum(1)]).unsqueeze(1)
    neg = torch.bmm(u.unsqueeze(1), mixed.transpose(1, 2)).squeeze(1)
    logits = torch.cat([pos, neg], 1) / ref.T
    return F.cross_entropy(logits, torch.zeros(n, dtype=torch.long))


def face_loss(model, crops):
    z = model.exp_fc(model.encoder(torch.cat(crops))[1])
    n, d = z.shape
    idx = torch.arange(n)
    keep = (idx.unsqueeze(0) != idx.unsqueeze(1)) & (idx.unsqueeze(0) != ((idx + n // 2) % n).unsqueeze(1))
    negatives = z.unsqueeze(0).expand(n, n, d)[keep].view(n, n - 2, d)
    return mixed_info_nce(z, negatives)


def pose_loss(model, views, negs):
    b, k = views[0].shape[0], len(negs)
    anchors = model.pose_fc(model.encoder(torch.cat(views))[2])
    stacked = model.pose_fc(model.encoder(torch.cat(negs))[2])  # row k * b + i
    per_image = stacked.view(k, b, -1).transpose(0, 1)  # image i's own K flipped views
    lam = ref.beta((b, k))  # one draw per image, shared by its two views
    return mixed_info_nce(anchors, per_image.repeat(2, 1, 1), lam.repeat(2, 1), torch.randperm(k))


def iteration(model, opt, batch, pose_batch):
    x, crops, views, negs = batch
    if pose_batch is not None:
        views = [v[:pose_batch] for v in views]
        negs = [v[:pose_batch] for v in negs]
    noise = (torch.randn_like(x) * ref.SIGMA, torch.randn_like(x) * ref.SIGMA)
    losses = {}
    for name, loss in (
        ("reconstruction", lambda: sum(ref.reconstruction(model, x, noise))),
        ("face", lambda: face_loss(model, crops)),
        ("pose", lambda: pose_loss(model, views, negs)),
    ):
        value = loss()
        opt.zero_grad()
        value.backward()
        opt.step()
        losses[name] = value.item()
    return losses


def distance_crops(img, ratio=0.4):
    """Two ratio*H x ratio*W crops centred in two different random quadrants."""
    w, h = img.size
    bw, bh = int(w * ratio / 2), int(h * ratio / 2)
    boxes = []
    for q in random.sample(range(4), 2):
        cx = random.randint(bw, w // 2 - bw) if q % 2 == 0 else random.randint(w // 2 + bw, w - bw)
        cy = random.randint(bh, h // 2 - bh) if q < 2 else random.randint(h // 2 + bh, h - bh)
        boxes.append(img.crop((cx - bw, cy - bh, cx + bw, cy + bh)))
    return boxes


def sobel(x):
    """Gradient magnitude of the grey image (central differences), on every channel, clamped to [0, 1]."""
    grey = (x * torch.tensor([65.738, 129.057, 25.064]).view(3, 1, 1) / 256).sum(0, keepdim=True)
    p = F.pad(grey.unsqueeze(0), (1, 1, 1, 1), mode="replicate")[0, 0]
    gx = p[1:-1, 2:] - p[1:-1, :-2]
    gy = p[2:, 1:-1] - p[:-2, 1:-1]
    return (gx * gx + gy * gy).sqrt().clamp(0, 1).expand_as(x).contiguous()


class PclViews(Dataset):
    def __init__(self, root, k):
        self.files = sorted(
            os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.lower().endswith((".jpg", ".jpeg", ".png"))
        )
        self.k = k
        aug = [
            T.RandomApply([T.ColorJitter(0.8, 0.8, 0.8, 0.2)], p=0.8),
            T.RandomGrayscale(p=0.2),
            T.RandomApply([T.GaussianBlur(7, (0.1, 2.0))], p=0.8),
            T.ToTensor(),
            T.RandomApply([T.Lambda(sobel)], p=0.6),
        ]
        self.clean = T.ToTensor()
        self.crop_view = T.Compose([T.Resize((SIDE, SIDE))] + aug)
        self.view = T.Compose(aug)
        self.negative = T.Compose([T.RandomHorizontalFlip(p=1.0)] + aug)

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        with open(self.files[i], "rb") as f:
            img = Image.open(f).convert("RGB").resize((SIDE, SIDE), Image.BILINEAR)
        crops = [self.crop_view(c) for c in distance_crops(img)]
        views = [self.view(img) for _ in range(2)]
        negs = [self.negative(img) for _ in range(self.k)]
        return self.clean(img), crops, views, negs


def loader(root, k, batch, workers):
    return DataLoader(PclViews(root, k), batch_size=batch, shuffle=True, num_workers=workers, drop_last=True,
                      prefetch_factor=4 if workers else None, persistent_workers=workers > 0)


def stream(loader):
    while True:
        for batch in loader:
            yield batch


def main(preset, batch, steps, threads, root=None, workers=0, data_only=False):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    random.seed(0)
    model, k, pose_batch = build(preset)
    if data_only:
        data = stream(loader(root, k, batch, workers))
        next(data)
        start = time.perf_counter()
        for _ in range(steps):
            next(data)
        print(json.dumps({"side": "pytorch", "preset": preset, "mode": "data", "batch": batch, "steps": steps,
                          "workers": workers, "images_per_s": batch * steps / (time.perf_counter() - start)}))
        return
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-3)
    if root is None:
        def rand():
            return torch.rand(batch, 3, SIDE, SIDE)
        fixed = (rand(), [rand(), rand()], [rand(), rand()], [rand() for _ in range(k)])
        data = iter(lambda: fixed, None)
    else:
        data = stream(loader(root, k, batch, workers))
    iteration(model, opt, next(data), pose_batch)  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        iteration(model, opt, next(data), pose_batch)
    seconds = time.perf_counter() - start
    print(json.dumps({"side": "pytorch", "preset": preset, "mode": "tensors" if root is None else "files",
                      "batch": batch, "steps": steps, "threads": threads, "seconds": round(seconds, 3),
                      "images_per_s": batch * steps / seconds}))


if __name__ == "__main__":
    a = sys.argv[1:]
    if len(a) not in (4, 6, 7) or (len(a) == 7 and a[6] != "data"):
        raise SystemExit(__doc__)
    main(a[0], *map(int, a[1:4]), *([a[4], int(a[5])] if len(a) >= 6 else []), data_only=len(a) == 7)

"""Reference of LAFS's landmark-position regularisation and of the margin
loss under mixup, for plugins/fr/tests/landmark_parity.rs, written here
from the LAFS paper's description (not copied from any code):

- a linear "landmark network" maps the flattened image to L points
  (x, y) in pixels; the reference network is a frozen copy, the tuned one
  is perturbed and trained;
- the term is w * mean(((tuned - reference) * (1 / (W - 1), 1 / (H - 1)))^2)
  over every coordinate, and its gradient reaches the tuned network only;
- mixup's soft target lam onehot(a) + (1 - lam) onehot(b) enters CosFace
  as s * (cos - m * target), then the cross-entropy with probabilities.

    python landmark_regularisation.py DIR   # writes DIR/landmarks.safetensors
"""
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file


def points(w, images, landmarks):
    return (images.flatten(1) @ w.t()).view(images.shape[0], landmarks, 2)


def main(out):
    torch.manual_seed(0)
    n, c, h, w_px, landmarks, weight = 3, 2, 5, 7, 4, 100.0
    images = torch.rand(n, c, h, w_px, dtype=torch.float64)
    reference_w = torch.randn(2 * landmarks, c * h * w_px, dtype=torch.float64)
    tuned_w = (reference_w + 0.3 * torch.randn_like(reference_w)).requires_grad_(True)
    scale = torch.tensor([1.0 / (w_px - 1), 1.0 / (h - 1)], dtype=torch.float64)
    with torch.no_grad():
        target = points(reference_w, images, landmarks)
    tuned = points(tuned_w, images, landmarks)
    value = weight * F.mse_loss(tuned * scale, target * scale)
    value.backward()

    x = torch.randn(6, 8, dtype=torch.float64)
    classes = torch.randn(5, 8, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3, 4, 1])
    partner = y.flip(0)
    lam = 0.3
    soft = lam * F.one_hot(y, 5).double() + (1 - lam) * F.one_hot(partner, 5).double()
    cos = F.normalize(x, dim=1) @ F.normalize(classes, dim=1).t()
    mixed = F.cross_entropy(64.0 * (cos - 0.4 * soft), soft)
    save_file(
        {
            "images": images,
            "reference_w": reference_w,
            "tuned_w": tuned_w.detach(),
            "value": value.detach().reshape(1),
            "grad": tuned_w.grad,
            "x": x,
            "classes": classes,
            "y": y,
            "mixed_loss": mixed.reshape(1),
        },
        f"{out}/landmarks.safetensors",
    )


if __name__ == "__main__":
    main(sys.argv[1])

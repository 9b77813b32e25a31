"""Reference margin logits for plugins/fr/tests/pytorch_parity.rs, written
here from the papers (not copied from any code):

- CosFace (Wang et al., 2018, eq. 4): s * (cos(theta_j) - m * [j == y]);
- ArcFace (Deng et al., 2019, eq. 3): s * cos(theta_y + m) for the true
  class, s * cos(theta_j) otherwise, where theta_y + m would pass pi the
  logit continues as cos(theta_y) - m * sin(m) (insightface's convention).

    python margins.py DIR    # writes DIR/margins.safetensors
"""
import math
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file


def cosines(x, w):
    return F.normalize(x, dim=1) @ F.normalize(w, dim=1).t()


def cosface(cos, y, s, m):
    onehot = F.one_hot(y, cos.shape[1]).to(cos.dtype)
    return s * (cos - m * onehot)


def arcface(cos, y, s, m):
    theta = torch.acos(cos.clamp(-1.0, 1.0))
    target = torch.where(theta + m < math.pi, torch.cos(theta + m), cos - m * math.sin(m))
    onehot = F.one_hot(y, cos.shape[1]).to(cos.dtype)
    return s * (onehot * target + (1 - onehot) * cos)


def main(out):
    torch.manual_seed(0)
    x = torch.randn(16, 8, dtype=torch.float64)
    w = torch.randn(5, 8, dtype=torch.float64)
    # Make rows 0 and 1 point away from their class (theta near pi), so the
    # ArcFace fallback is exercised.
    y = torch.randint(0, 5, (16,))
    x[0] = -w[y[0]]
    x[1] = -w[y[1]] + 0.05 * torch.randn(8, dtype=torch.float64)
    cos = cosines(x, w)
    save_file(
        {
            "x": x,
            "w": w,
            "y": y,
            "cosface": cosface(cos, y, 64.0, 0.4),
            "arcface": arcface(cos, y, 64.0, 0.5),
            "cosface_loss": F.cross_entropy(cosface(cos, y, 64.0, 0.4), y).reshape(1),
            "arcface_loss": F.cross_entropy(arcface(cos, y, 64.0, 0.5), y).reshape(1),
        },
        f"{out}/margins.safetensors",
    )


if __name__ == "__main__":
    main(sys.argv[1])

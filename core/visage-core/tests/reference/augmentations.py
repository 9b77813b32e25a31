"""Writes torchvision reference outputs for the built-in augmentations.

Run by augment::tests::matches_torchvision with the venv's torchvision
(./scripts/test installs it):
    python core/visage-core/tests/reference/augmentations.py DIR
"""

import os
import sys

import numpy as np
import torch
import torchvision.transforms.functional as F


def main(out):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    img = torch.rand(3, 40, 52)
    refs = {
        "input": img,
        "hue": F.adjust_hue(img, 0.1),
        "hue_neg": F.adjust_hue(img, -0.37),
        "saturation": F.adjust_saturation(img, 1.5),
        "contrast": F.adjust_contrast(img, 0.6),
        "brightness": F.adjust_brightness(img, 1.3),
        "resize": F.resize(img, [20, 30], antialias=True),
        "resize_up": F.resize(img, [57, 75], antialias=True),
        "resize_short": F.resize(img, 30, antialias=True),
        "rotate": F.rotate(img, 25.0, interpolation=F.InterpolationMode.BILINEAR),
        "blur": F.gaussian_blur(img, [7, 7], [1.3, 1.3]),
        "center_crop": F.center_crop(img, [50, 50]),
        "center_crop_small": F.center_crop(img, [21, 30]),
        "gray": F.rgb_to_grayscale(img, 3),
        "solarize": F.solarize(img, 0.6),
        "normalize": F.normalize(img, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    }
    for name, t in refs.items():
        np.save(os.path.join(out, f"{name}.npy"), t.contiguous().numpy().astype(np.float32))


if __name__ == "__main__":
    main(sys.argv[1])

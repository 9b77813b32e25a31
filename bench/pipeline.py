"""The torchvision + PIL reference of the pipeline benchmark: decode the JPEGs
under DIR and make two augmented views of each (SimCLR-style:
RandomResizedCrop, horizontal flip, ColorJitter 0.4/0.4/0.4/0.1 with p=0.8,
grayscale p=0.2, ToTensor), batched by a DataLoader with WORKERS worker
processes. Prints one JSON line with images/s (files per second, two views
each), timed from the first batch to the last.

    python bench/pipeline.py DIR SIZE WORKERS [BATCH] [EPOCHS]
"""
import json
import os
import sys
import time

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T


class TwoViews(Dataset):
    def __init__(self, root, size):
        self.files = sorted(
            os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.lower().endswith((".jpg", ".jpeg", ".png"))
        )
        self.view = T.Compose([
            T.RandomResizedCrop(size),
            T.RandomHorizontalFlip(),
            T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
            T.RandomGrayscale(p=0.2),
            T.ToTensor(),
        ])

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        with open(self.files[i], "rb") as f:
            img = Image.open(f).convert("RGB")
        return self.view(img), self.view(img)


def main():
    root, size, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    batch = int(sys.argv[4]) if len(sys.argv) > 4 else 64
    epochs = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    torch.set_num_threads(1)
    data = TwoViews(root, size)
    loader = DataLoader(data, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True,
                        prefetch_factor=2 if workers else None)
    images, start = 0, None
    for _ in range(epochs):
        for a, b in loader:
            assert a.shape[1:] == (3, size, size) and b.shape == a.shape
            if start is None:
                start = time.perf_counter()  # after the first batch: worker start-up excluded
            else:
                images += a.shape[0]
    elapsed = time.perf_counter() - start
    print(json.dumps({"side": "torchvision+PIL", "size": size, "workers": workers, "images": images,
                      "seconds": round(elapsed, 3), "images_per_s": images / elapsed}))


if __name__ == "__main__":
    main()

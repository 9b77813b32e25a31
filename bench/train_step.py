"""PyTorch side of bench/train_step: images/s of one full training step
(uint8 batch -> float, forward, loss, backward, SGD momentum step) for the
same models, sizes and thread count as core/visage-core/benches/train_step.rs.

    python bench/train_step.py MODEL BATCH SIZE STEPS THREADS
prints one JSON line.
"""
import json
import os
import sys
import time

import timm
import torch
import torchvision


def model(name):
    if name == "resnet50":
        m = torchvision.models.resnet50()
        m.fc = torch.nn.Identity()
        return m
    if name == "resnet18_w32":
        return narrow_resnet18(32)
    if name == "vit_b16":
        return timm.models.vision_transformer.VisionTransformer(
            img_size=224, patch_size=16, embed_dim=768, depth=12, num_heads=12, num_classes=0
        )
    if name == "vit_tiny_p8_64":
        return timm.models.vision_transformer.VisionTransformer(
            img_size=64, patch_size=8, embed_dim=192, depth=12, num_heads=3, num_classes=0
        )
    raise SystemExit(f"unknown model {name}")


def narrow_resnet18(width):
    # Same layout as Visage's resnet with `width`: stages width * [1, 2, 4, 8].
    class Net(torchvision.models.resnet.ResNet):
        def __init__(self):
            torch.nn.Module.__init__(self)
            self._norm_layer = torch.nn.BatchNorm2d
            self.inplanes = width
            self.dilation = 1
            self.groups = 1
            self.base_width = 64
            self.conv1 = torch.nn.Conv2d(3, width, 7, 2, 3, bias=False)
            self.bn1 = torch.nn.BatchNorm2d(width)
            self.relu = torch.nn.ReLU(inplace=True)
            self.maxpool = torch.nn.MaxPool2d(3, 2, 1)
            block = torchvision.models.resnet.BasicBlock
            self.layer1 = self._make_layer(block, width, 2)
            self.layer2 = self._make_layer(block, width * 2, 2, stride=2)
            self.layer3 = self._make_layer(block, width * 4, 2, stride=2)
            self.layer4 = self._make_layer(block, width * 8, 2, stride=2)
            self.avgpool = torch.nn.AdaptiveAvgPool2d(1)
            self.fc = torch.nn.Identity()

    return Net()


def main(name, batch, size, steps, threads):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = model(name).train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    data = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8)

    # VISAGE_BENCH_PRECISION=bf16: the forward pass under bfloat16 autocast.
    bf16 = os.environ.get("VISAGE_BENCH_PRECISION") == "bf16"

    def step():
        x = data.float() / 255.0
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            pooled = net(x)
        loss = pooled.float().pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = time.perf_counter() - start
    print(json.dumps({"side": "pytorch", "model": name, "images_per_s": batch * steps / seconds}))


if __name__ == "__main__":
    name, batch, size, steps, threads = sys.argv[1], *map(int, sys.argv[2:6])
    main(name, batch, size, steps, threads)

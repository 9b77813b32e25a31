"""Reference outputs of PCL's FaceCycle encoder, a PyTorch model written
here from the paper's description with the official code's parameter
names, for plugins/pcl/tests/pytorch_parity.rs.

    python facecycle.py DIR    # writes pcl.pth and reference.safetensors
"""
import sys

import torch
from safetensors.torch import save_file


class SelfAttention(torch.nn.Module):
    # Written from PCL's description (methods.md), not copied.
    def __init__(self, c):
        super().__init__()
        self.g = torch.nn.Conv2d(c, c, 1)
        self.theta = torch.nn.Conv2d(c, c, 1)
        self.phi = torch.nn.Conv2d(c, c, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        g = self.g(x).view(b, c, -1).softmax(dim=1)
        theta = self.theta(x).view(b, c, -1).softmax(dim=-1).permute(0, 2, 1)
        phi = self.phi(x).view(b, c, -1)
        return torch.nn.functional.leaky_relu(x + (phi @ theta @ g).view(b, c, h, w), 0.1)


def stage(c_in, mid, c_out, stride, attention):
    lrelu = lambda: torch.nn.LeakyReLU(0.1)
    layers = [torch.nn.Conv2d(c_in, mid, 3, stride, 1), lrelu()]
    if attention:
        layers.append(SelfAttention(mid))
    layers += [torch.nn.Conv2d(mid, c_out, 3, 1, 1), lrelu()]
    return torch.nn.Sequential(*layers)


class ResBlock(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(c, c, 3, 1, 1)
        self.conv2 = torch.nn.Conv2d(c, c, 3, 1, 1)

    def forward(self, x):
        f = torch.nn.functional.leaky_relu
        return f(self.conv2(f(self.conv1(x), 0.1)) + x, 0.1)


class FaceCycle(torch.nn.Module):
    def __init__(self, w=16):
        super().__init__()
        self.conv1 = torch.nn.Sequential(
            torch.nn.Conv2d(3, w, 7, 2, 3), torch.nn.LeakyReLU(0.1), torch.nn.Conv2d(w, w, 3, 1, 1), torch.nn.LeakyReLU(0.1)
        )
        self.layer1 = stage(w, w, w, 1, True)
        self.layer2_1 = stage(w, 2 * w, 2 * w, 2, True)
        self.resblock1 = ResBlock(2 * w)
        self.resblock2 = ResBlock(2 * w)
        self.layer2_2 = stage(2 * w, 2 * w, 2 * w, 2, False)
        self.layer3_1 = stage(2 * w, 4 * w, 2 * w, 2, False)
        self.layer3_2_exp = stage(2 * w, 2 * w, 2 * w, 1, False)
        self.layer3_2_pose = stage(2 * w, 2 * w, 2 * w, 1, False)

    def forward(self, x):
        t = self.layer2_2(self.resblock2(self.resblock1(self.layer2_1(self.layer1(self.conv1(x))))))
        fea = self.layer3_1(t)
        n = x.shape[0]
        return fea.view(n, -1), self.layer3_2_exp(fea).view(n, -1), self.layer3_2_pose(fea).view(n, -1)


@torch.no_grad()
def make(out):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 64)
    fc = FaceCycle(16).eval()
    # As PCL's training script saves it: DataParallel around the model.
    torch.save({"state_dict": {"module.encoder." + k: v for k, v in fc.state_dict().items()}, "epoch": 3}, f"{out}/pcl.pth")
    fea, face, pose = fc(x)
    ref = {"x": x, "facecycle_fea": fea, "facecycle_face": face, "facecycle_pose": pose}
    save_file({k: v.contiguous() for k, v in ref.items()}, f"{out}/reference.safetensors")


if __name__ == "__main__":
    make(sys.argv[1])

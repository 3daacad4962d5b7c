"""CenterNet: "Objects as Points", X. Zhou, D. Wang and P. Krähenbühl, 2019.

An object is its box's centre: the network predicts, at stride 4, a heatmap per class whose peaks are the centres,
and at every position the box's size and the centre's sub-pixel offset. Decoding needs no anchors and no NMS: the
peaks are the positions equal to the 3x3 max-pool of their neighbourhood.

    heads:   heatmap (N, C, H/4, W/4) logits, size (N, 2, H/4, W/4) in input pixels, offset (N, 2, H/4, W/4)
    loss:    focal(heatmap, Gaussian targets) + 0.1 L1(size at centres) + L1(offset at centres)     (eq. 1-3)

The backbone is sized for 64 x 64 images: conv-BN-ReLU blocks down to stride 8, a transposed conv back to stride 4
added to the stride-4 features (a one-step feature pyramid), then a 3x3 conv and a 1x1 conv per head. The heatmap's
bias starts at -2.19 (sigmoid 0.1), as in the paper's code, so the focal loss starts small.
"""

from __future__ import annotations

import math

import numpy as np

from dlbasics import nn
from dlbasics.models.registry import register
from dlbasics.nn import functional as F
from dlbasics.tensor import Tensor, float_input

PAPER = "Zhou, Wang & Krähenbühl, Objects as Points (2019)"
RECIPE = {"steps": 400, "batch_size": 32, "optimizer": "adam", "lr": 2e-3, "eval_every": 100}
STRIDE = 4
SIZE_WEIGHT, OFFSET_WEIGHT = 0.1, 1.0


def block(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU())


def head(width: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, out, 1))


class CenterNet(nn.Module):
    """images (N, in_channels, H, W) -> (heatmap logits (N, num_classes, H/4, W/4), size (N, 2, ...), offset
    (N, 2, ...)); H and W multiples of 8. ``encode`` makes the targets of a batch's boxes, ``loss`` compares,
    ``decode`` reads boxes back."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 32) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.stem = nn.Sequential(block(in_channels, width // 2), block(width // 2, width, 2))  # stride 2
        self.down4 = nn.Sequential(block(width, width, 2), block(width, width))  # stride 4
        self.down8 = nn.Sequential(block(width, 2 * width, 2), block(2 * width, 2 * width))  # stride 8
        self.up = nn.ConvTranspose2d(2 * width, width, 2, stride=2)
        self.fuse = block(width, width)
        self.heatmap, self.size, self.offset = head(width, num_classes), head(width, 2), head(width, 2)
        self.heatmap[-1].bias.data[...] = -2.19  # log(0.1 / 0.9): every position starts as "probably nothing"

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x = float_input(x)
        if x.ndim != 4 or x.shape[2] % 8 or x.shape[3] % 8:
            raise ValueError(f"centernet: expected images (N, C, H, W) with H and W multiples of 8, got shape "
                             f"{tuple(x.shape)}")
        s4 = self.down4(self.stem(x))
        f = self.fuse(s4 + self.up(self.down8(s4)))
        return self.heatmap(f), self.size(f), self.offset(f)

    # ---- targets ----
    def encode(self, objects: np.ndarray, out_size: tuple[int, int]) -> dict[str, np.ndarray]:
        """Targets of a batch's objects (N, K, 5): rows (class 1..C, x0, y0, x1, y1), class <= 0 for no object.
        heatmap (N, C, h, w): a Gaussian at each centre (its radius from the box's size, CornerNet's rule), the
        maximum where two overlap; size and offset (N, 2, h, w) at the centres; mask (N, 1, h, w) 1 at the centres."""
        h, w = out_size
        n = objects.shape[0]
        heat = np.zeros((n, self.num_classes, h, w), np.float32)
        size = np.zeros((n, 2, h, w), np.float32)
        offset = np.zeros((n, 2, h, w), np.float32)
        mask = np.zeros((n, 1, h, w), np.float32)
        ys, xs = np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :]
        for i, k in zip(*np.nonzero(objects[..., 0] > 0)):  # a handful of objects per image
            c, x0, y0, x1, y1 = objects[i, k]
            bw, bh = (x1 - x0) / STRIDE, (y1 - y0) / STRIDE
            cx, cy = (x0 + x1) / 2 / STRIDE, (y0 + y1) / 2 / STRIDE
            px, py = min(int(cx), w - 1), min(int(cy), h - 1)
            sigma = (2 * max(0, int(gaussian_radius(bh, bw))) + 1) / 6
            g = np.exp(-((xs - px) ** 2 + (ys - py) ** 2) / (2 * sigma * sigma))
            np.maximum(heat[i, int(c) - 1], g, out=heat[i, int(c) - 1])
            size[i, :, py, px] = (x1 - x0, y1 - y0)
            offset[i, :, py, px] = (cx - px, cy - py)
            mask[i, 0, py, px] = 1.0
        return {"heatmap": heat, "size": size, "offset": offset, "mask": mask}

    def loss(self, outputs: tuple[Tensor, Tensor, Tensor], targets: dict[str, np.ndarray]) -> tuple[Tensor, dict]:
        """The paper's L = L_k + 0.1 L_size + L_off; returns it and its three parts as floats."""
        heat, size, offset = outputs
        l_heat = F.gaussian_focal_loss(heat, targets["heatmap"])
        l_size = masked_l1(size, targets["size"], targets["mask"])
        l_off = masked_l1(offset, targets["offset"], targets["mask"])
        total = l_heat + SIZE_WEIGHT * l_size + OFFSET_WEIGHT * l_off
        return total, {"heatmap": float(l_heat.item()), "size": float(l_size.item()), "offset": float(l_off.item())}

    # ---- decoding ----
    def decode(self, outputs: tuple[Tensor, Tensor, Tensor], k: int = 20,
               threshold: float = 0.05) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per image (boxes (D, 4) in input pixels, scores (D,), classes (D,) in 0..C-1): the ``k`` highest peaks
        of the sigmoid heatmaps (positions equal to their 3x3 max) with a score above ``threshold``."""
        from scipy.ndimage import maximum_filter

        heat = 1.0 / (1.0 + np.exp(-outputs[0].data.astype(np.float64)))
        size, offset = outputs[1].data, outputs[2].data
        peaks = heat * (heat == maximum_filter(heat, size=(1, 1, 3, 3), mode="constant", cval=-1.0))
        n, _, h, w = heat.shape
        flat = peaks.reshape(n, -1)
        top = np.argsort(-flat, axis=1, kind="stable")[:, :k]
        out = []
        for i in range(n):
            idx = top[i][flat[i, top[i]] > threshold]
            cls, pos = np.divmod(idx, h * w)
            py, px = np.divmod(pos, w)
            cx, cy = (px + offset[i, 0, py, px]) * STRIDE, (py + offset[i, 1, py, px]) * STRIDE
            bw, bh = size[i, 0, py, px], size[i, 1, py, px]
            boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1)
            out.append((boxes, flat[i, idx], cls))
        return out


def masked_l1(pred: Tensor, target: np.ndarray, mask: np.ndarray) -> Tensor:
    """sum |pred - target| over the positions where ``mask`` is 1, divided by their number (the objects)."""
    diff = (pred - target).abs() * mask
    return diff.sum() * (1.0 / max(float(mask.sum()), 1.0))


def gaussian_radius(height: float, width: float, min_overlap: float = 0.7) -> float:
    """The Gaussian's radius for a box of this size, by the rule of CornerNet's and CenterNet's published code: the
    smallest root of three quadratics for corners moved while keeping IoU >= ``min_overlap``, each root divided by 2
    whatever its leading coefficient (as that code does; the radius comes out about 0.27 of a square's side, smaller
    than the exact bound), so the targets match the papers' training."""
    a1, b1, c1 = 1, height + width, width * height * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + math.sqrt(b1 ** 2 - 4 * a1 * c1)) / 2
    a2, b2, c2 = 4, 2 * (height + width), (1 - min_overlap) * width * height
    r2 = (b2 + math.sqrt(b2 ** 2 - 4 * a2 * c2)) / 2
    a3, b3, c3 = 4 * min_overlap, -2 * min_overlap * (height + width), (min_overlap - 1) * width * height
    r3 = (b3 + math.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)


@register("centernet", paper=PAPER, default_data="shapes-det", task="detection", recipe=RECIPE,
          summary="anchor-free detector: per-class centre heatmaps at stride 4 (focal loss), size and offset heads")
def centernet(in_channels: int, num_classes: int, width: int = 32) -> CenterNet:
    return CenterNet(in_channels, num_classes, width)


__all__ = ["STRIDE", "CenterNet", "centernet", "gaussian_radius", "masked_l1"]

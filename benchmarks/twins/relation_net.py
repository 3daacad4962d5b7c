"""dlbasics' ``models/relation_net.py`` in PyTorch (CNN+MLP and the Relation Network of Santoro et al. 2017, with
optional FiLM), with the same parameter names: the calibration peer of the Sort-of-CLEVR recipe and the parity
tests' oracle.

    python benchmarks/twins/relation_net.py --model relation_net --film --images 9800 --epochs 5
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def coordinates(n: int, h: int, w: int, dtype: torch.dtype) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, h, dtype=dtype), torch.linspace(-1, 1, w, dtype=dtype),
                            indexing="ij")
    return torch.stack([xs, ys])[None].expand(n, 2, h, w)


class QuestionCNN(nn.Module):
    def __init__(self, in_channels: int, question_size: int, width: int = 24, film: bool = False) -> None:
        super().__init__()
        self.width = width
        self.convs = nn.ModuleList([nn.Conv2d(in_channels + 2 if i == 0 else width, width, 3, stride=2, padding=1,
                                              bias=False) for i in range(4)])
        self.norms = nn.ModuleList([nn.BatchNorm2d(width) for _ in range(4)])
        self.film = nn.ModuleList([nn.Linear(question_size, 2 * width) for _ in range(4)]) if film else None

    def forward(self, images: torch.Tensor, questions: torch.Tensor) -> torch.Tensor:
        n, _, h, w = images.shape
        x = torch.cat([images, coordinates(n, h, w, images.dtype)], 1)
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            x = norm(conv(x))
            if self.film is not None:
                gb = self.film[i](questions)
                x = x * (1.0 + gb[:, :self.width, None, None]) + gb[:, self.width:, None, None]
            x = F.relu(x)
        return x


class CNNMLP(nn.Module):
    def __init__(self, in_channels: int = 3, num_classes: int = 10, question_size: int = 11, width: int = 24,
                 hidden_size: int = 256, film: bool = False, image_size: int = 64) -> None:
        super().__init__()
        self.cnn = QuestionCNN(in_channels, question_size, width, film)
        h = hidden_size
        self.mlp = nn.Sequential(nn.Linear(width * (image_size // 16) ** 2 + question_size, h), nn.ReLU(),
                                 nn.Linear(h, h), nn.ReLU(), nn.Dropout(0.5), nn.Linear(h, num_classes))

    def forward(self, images: torch.Tensor, questions: torch.Tensor) -> torch.Tensor:
        f = self.cnn(images, questions)
        return self.mlp(torch.cat([f.flatten(1), questions], 1))


class RelationNet(nn.Module):
    def __init__(self, in_channels: int = 3, num_classes: int = 10, question_size: int = 11, width: int = 24,
                 hidden_size: int = 256, film: bool = False) -> None:
        super().__init__()
        self.cnn = QuestionCNN(in_channels, question_size, width, film)
        d, h = width + 2, hidden_size
        self.g_i, self.g_j = nn.Linear(d, h), nn.Linear(d, h, bias=False)
        self.g_q = nn.Linear(question_size, h, bias=False)
        self.g = nn.Sequential(nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU())
        self.f = nn.Sequential(nn.Linear(h, h), nn.ReLU(), nn.Dropout(0.5), nn.Linear(h, num_classes))

    def forward(self, images: torch.Tensor, questions: torch.Tensor) -> torch.Tensor:
        x = self.cnn(images, questions)
        n, _, h, w = x.shape
        objects = torch.cat([x, coordinates(n, h, w, x.dtype)], 1).flatten(2).transpose(1, 2)  # (N, K, d)
        k = h * w
        pairs = self.g_i(objects)[:, :, None] + self.g_j(objects)[:, None] + self.g_q(questions)[:, None, None]
        return self.f(self.g(pairs.reshape(n * k * k, -1)).reshape(n, k * k, -1).sum(1))


def train(model_name: str = "relation_net", film: bool = False, images: int = 9800, epochs: int = 5,
          batch_size: int = 64, lr: float = 1e-3, width: int = 24, hidden_size: int = 256, seed: int = 0,
          threads: int = 2, test_images: int = 200, invert: bool = False) -> dict:
    """Train on ``images`` Sort-of-CLEVR scenes (20 questions each) and report test accuracies by question type."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
    from dlbasics.data.datasets.clevr import QUESTIONS, question_type, scenes

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    x, q, a = scenes(images, [seed, 10])
    tx, tq, ta = scenes(test_images, [seed, 12])
    if invert:  # the other background than the data set's (black by default)
        x, tx = 1.0 - x, 1.0 - tx
    per = q.shape[1]
    q, a, idx = q.reshape(-1, 11), a.reshape(-1), np.repeat(np.arange(images), per)
    model = (RelationNet(width=width, hidden_size=hidden_size, film=film) if model_name == "relation_net"
             else CNNMLP(width=width, hidden_size=hidden_size, film=film))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    X, Q, A = torch.from_numpy(x), torch.from_numpy(q), torch.from_numpy(a)

    def evaluate() -> dict:
        model.eval()
        with torch.no_grad():
            qq, aa = tq.reshape(-1, 11), ta.reshape(-1)
            ii = np.repeat(np.arange(test_images), per)
            pred = torch.cat([model(torch.from_numpy(tx[ii[s:s + 500]]), torch.from_numpy(qq[s:s + 500])).argmax(1)
                              for s in range(0, len(aa), 500)]).numpy()
        model.train()
        right, kind = pred == aa, question_type(qq)
        out = {"accuracy": float(right.mean()), "nonrel": float(right[kind < 3].mean()),
               "rel": float(right[kind >= 3].mean())}
        return out | {QUESTIONS[k]: round(float(right[kind == k].mean()), 3) for k in range(6)}

    curve, start, steps = [], time.perf_counter(), 0
    for epoch in range(epochs):
        order = rng.permutation(len(a))
        for s in range(0, len(order) - batch_size + 1, batch_size):
            b = order[s:s + batch_size]
            loss = F.cross_entropy(model(X[idx[b]], Q[b]), A[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
        curve.append({"epoch": epoch + 1, "seconds": round(time.perf_counter() - start, 1)} | evaluate())
        print(json.dumps(curve[-1]), file=sys.stderr, flush=True)
    return {"model": model_name, "film": film, "steps": steps, "curve": curve}


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="relation_net", choices=["relation_net", "vqa_cnn_mlp"])
    p.add_argument("--film", action="store_true")
    p.add_argument("--images", type=int, default=9800)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--width", type=int, default=24)
    p.add_argument("--hidden-size", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--invert", action="store_true")
    args = p.parse_args()
    print(json.dumps(train(args.model, args.film, args.images, args.epochs, lr=args.lr, width=args.width,
                           hidden_size=args.hidden_size, threads=args.threads, invert=args.invert)))

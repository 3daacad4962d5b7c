"""Time one training step (forward + backward + optimizer step, float32, 2 threads) of the same network in
dlbasics and in PyTorch CPU, in one run, each workload in its own process; print the ratio.

    python benchmarks/bench_train_step.py                 # all workloads, table on stdout
    python benchmarks/bench_train_step.py --write docs/benchmarks.md

Each measurement: warm-up steps, then the median of --steps steps (PERFORMANCE.md: machines drift +-15%
from run to run, so only ratios within one run mean anything). Each library runs --repeats times per workload,
alternating with the other, each time in a fresh process; the table gives the median of those medians
(PyTorch's own LeNet step drifted between 3.9 and 5.7 ms from one process to the next). Peak RSS is the
workers' high-water mark.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

THREADS = 2


# ---- workloads: one function per workload, called with the library (dlbasics or torch) -------------------
# dlbasics mirrors torch's API, so the same lines build both sides: the two steps are the same computation.
def train_step(model: Any, loss_fn: Any, opt: Any, x: Any, y: Any) -> Callable[[], None]:
    def step() -> None:
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def mlp(lib: Any, batch: int = 128) -> Callable[[], None]:
    lib.manual_seed(0)
    rng = np.random.default_rng(0)
    x = lib.tensor(rng.standard_normal((batch, 784)).astype(np.float32))
    y = lib.tensor(rng.integers(0, 10, batch))
    nn = lib.nn
    model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))
    return train_step(model, nn.CrossEntropyLoss(), lib.optim.Adam(model.parameters(), lr=1e-3), x, y)


def lenet(lib: Any) -> Callable[[], None]:
    lib.manual_seed(0)
    rng = np.random.default_rng(0)
    x = lib.tensor(rng.standard_normal((64, 1, 28, 28)).astype(np.float32))
    y = lib.tensor(rng.integers(0, 10, 64))
    nn = lib.nn
    model = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),   # (64, 6, 14, 14)
                          nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),  # (64, 16 * 5 * 5)
                          nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    return train_step(model, nn.CrossEntropyLoss(), lib.optim.Adam(model.parameters(), lr=1e-3), x, y)


def resnet20(lib: Any) -> Callable[[], None]:
    """He et al.'s CIFAR ResNet-20 (3 stages x 3 basic blocks, 16/32/64 channels, option-A shortcuts). A BN
    followed by a ReLU is one module: dlbasics' fused ``BatchNormReLU2d``, PyTorch's BatchNorm2d + ReLU (eager
    PyTorch has no fused module; the computation is the same)."""
    nn, F = lib.nn, lib.nn.functional

    def bn_relu(c: int) -> Any:
        fused = getattr(nn, "BatchNormReLU2d", None)
        return fused(c) if fused is not None else nn.Sequential(nn.BatchNorm2d(c), nn.ReLU())

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = bn_relu(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.down = (cout - cin) // 2 if stride != 1 else 0

        def forward(self, x: Any) -> Any:
            out = self.bn1(self.conv1(x))  # relu(BN(conv(x)))
            out = self.bn2(self.conv2(out))
            short = x if not self.down else F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.down, self.down))
            return F.relu(out + short)

    class ResNet20(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), bn_relu(16))
            blocks, cin = [], 16
            for cout, stride in ((16, 1), (32, 2), (64, 2)):
                for b in range(3):
                    blocks.append(Block(cin, cout, stride if b == 0 else 1))
                    cin = cout
            self.blocks = nn.Sequential(*blocks)
            self.fc = nn.Linear(64, 10)

        def forward(self, x: Any) -> Any:
            x = self.blocks(self.stem(x))  # (N, 64, 8, 8)
            return self.fc(x.mean(dim=(2, 3)))  # global average pool -> (N, 64)

    lib.manual_seed(0)
    rng = np.random.default_rng(0)
    x = lib.tensor(rng.standard_normal((32, 3, 32, 32)).astype(np.float32))
    y = lib.tensor(rng.integers(0, 10, 32))
    model = ResNet20()
    return train_step(model, nn.CrossEntropyLoss(), lib.optim.Adam(model.parameters(), lr=1e-3), x, y)


def conv_layer(lib: Any) -> Callable[[], None]:
    """One ResNet-20 stage-1 conv (16 -> 16, 3x3, 32x32, batch 32): forward + backward, no optimizer."""
    lib.manual_seed(0)
    rng = np.random.default_rng(0)
    x = lib.tensor(rng.standard_normal((32, 16, 32, 32)).astype(np.float32), requires_grad=True)
    conv = lib.nn.Conv2d(16, 16, 3, padding=1, bias=False)
    g = lib.tensor(rng.standard_normal((32, 16, 32, 32)).astype(np.float32))

    def step() -> None:
        x.grad = None
        conv.weight.grad = None
        conv(x).backward(g)

    return step


def language_model(lib: Any, name: str) -> Callable[[], None]:
    """A zoo language model (dlbasics ``models.create``; PyTorch: its twin in ``benchmarks/twins``, which the
    tests hold equal by state dict) on a batch of 12 windows of 64 characters (vocabulary 65), AdamW as the
    recipe (lr 1e-3, betas (0.9, 0.99), weight decay 0.1)."""
    lib.manual_seed(0)
    rng = np.random.default_rng(0)
    x = lib.tensor(rng.integers(0, 65, (12, 64)))
    y = lib.tensor(rng.integers(0, 65, 12 * 64))
    if lib.__name__ == "torch":
        twin = importlib.import_module(f"twins.{name}")
        model = getattr(twin, name)(vocab_size=65, block_size=64)
    else:
        model = lib.models.create(name, vocab_size=65, block_size=64)
    opt = lib.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
    loss_fn = lib.nn.CrossEntropyLoss()
    return train_step(lambda idx: model(idx).reshape(12 * 64, 65), loss_fn, opt, x, y)


def translator(lib: Any, name: str, **options: Any) -> Callable[[], None]:
    """A zoo translator (PyTorch: its twin in ``benchmarks/twins/seq2seq.py``) on a batch shaped like the Bible
    verses': 64 pairs, sources of 6-20 ids, targets of 7-21, vocabularies 2,956 -> 3,308; Adam lr 1e-3; both
    output layers score the real target words only (``positions``)."""
    lib.manual_seed(0)
    rng = np.random.default_rng(0)
    b, vs, vt = 64, 2956, 3308
    src_len, tgt_len = rng.integers(6, 21, b), rng.integers(7, 22, b)
    src = np.where(np.arange(20) < src_len[:, None], rng.integers(4, vs, (b, 20)), 0)
    tgt = np.where(np.arange(21) < tgt_len[:, None], rng.integers(4, vt, (b, 21)), 0)
    words = tgt[:, 1:] != 0
    if lib.__name__ == "torch":
        import torch

        model = getattr(importlib.import_module("twins.seq2seq"), name)(vs, vt, **options)
        args = (torch.tensor(src), torch.tensor(src_len), torch.tensor(tgt[:, :-1]))
        target, mask = torch.tensor(tgt[:, 1:][words]), torch.tensor(words)
        forward = lambda: model(*args, positions=mask)  # noqa: E731
    else:
        model = lib.models.create(name, src_vocab_size=vs, tgt_vocab_size=vt, **options)
        target = tgt[:, 1:][words]
        forward = lambda: model(src, src_len, tgt[:, :-1], positions=words)  # noqa: E731
    opt = lib.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = lib.nn.CrossEntropyLoss()
    return train_step(lambda _: forward(), loss_fn, opt, None, target)


def bert(lib: Any) -> Callable[[], None]:
    """BERT-Tiny's shape (2 layers x 128, 2 heads, 512 wide) masked-LM step on a batch like the pre-training text's:
    64 sequences of 8-64 ids, vocabulary 21,903, 15% of the words scored; AdamW lr 1e-3."""
    lib.manual_seed(0)
    rng = np.random.default_rng(0)
    b, v = 64, 21903
    lengths = rng.integers(8, 65, b)
    ids = np.where(np.arange(64) < lengths[:, None], rng.integers(5, v, (b, 64)), 0)
    chosen = (rng.random((b, 64)) < 0.15) & (ids != 0)
    if lib.__name__ == "torch":
        import torch

        model = importlib.import_module("twins.bert").bert(vocab_size=v, max_len=64)
        args = (torch.tensor(ids), torch.tensor(lengths))
        forward = lambda: model(*args, masked_positions=torch.tensor(chosen))  # noqa: E731
        target = torch.tensor(ids[chosen])
    else:
        model = lib.models.create("bert", vocab_size=v, max_len=64)
        forward = lambda: model(ids, lengths, masked_positions=chosen)  # noqa: E731
        target = ids[chosen]
    opt = lib.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    return train_step(lambda _: forward(), lib.nn.CrossEntropyLoss(), opt, None, target)


def vit(lib: Any) -> Callable[[], None]:
    """The zoo's ViT (7x7 patches of 28x28, 4 pre-norm blocks x 64, 4 heads) on a batch of 128, AdamW as its
    recipe (lr 1e-3, weight decay 0.05)."""
    lib.manual_seed(0)
    rng = np.random.default_rng(0)
    x = lib.tensor(rng.standard_normal((128, 1, 28, 28)).astype(np.float32))
    y = lib.tensor(rng.integers(0, 10, 128))
    if lib.__name__ == "torch":
        model = importlib.import_module("twins.vit").vit(1, 28, 10)
    else:
        model = lib.models.create("vit", in_channels=1, image_size=28, num_classes=10)
    opt = lib.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    return train_step(model, lib.nn.CrossEntropyLoss(), opt, x, y)


def gan(lib: Any, name: str) -> Callable[[], None]:
    """One adversarial step of the zoo's GAN (``train.adversarial``: D on real vs detached fake, then G's
    non-saturating loss through the updated, frozen D), batch 64 of 1x28x28, both Adam(2e-4, betas (0.5, 0.999))."""
    lib.manual_seed(0)
    rng = np.random.default_rng(0)
    real = rng.uniform(0, 1, (64, 1, 28, 28)).astype(np.float32)
    z = rng.standard_normal((64, 64)).astype(np.float32)
    if lib.__name__ == "torch":
        import torch

        twins = importlib.import_module("twins.gan")
        model = getattr(twins, name)(1, 28)
        opt_g = torch.optim.Adam(model.generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(model.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
        real_t, z_t = torch.tensor(real), torch.tensor(z)
        return lambda: twins.adversarial_step(model, opt_g, opt_d, real_t, z_t)
    from dlbasics.train.adversarial import AdversarialTask

    model = lib.models.create(name, in_channels=1, image_size=28)
    task = AdversarialTask(model, lib.optim.Adam(model.generator.parameters(), lr=2e-4, betas=(0.5, 0.999)),
                           lib.optim.Adam(model.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999)))
    model.noise = lambda n, generator=None: lib.tensor(z)
    return lambda: task.training_step(real)


def simclr(lib: Any) -> Callable[[], None]:
    """One SimCLR step of the zoo's model: both views of 256 images (1x28x28) in one pass, NT-Xent at tau 0.5, Adam
    1e-3. The views are given (augmentation is timed apart: ``data.augment``'s docstring)."""
    lib.manual_seed(0)
    rng = np.random.default_rng(0)
    v1, v2 = rng.uniform(0, 1, (2, 256, 1, 28, 28)).astype(np.float32)
    if lib.__name__ == "torch":
        import torch

        twins = importlib.import_module("twins.simclr")
        model = twins.simclr(1)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        a, b = torch.tensor(v1), torch.tensor(v2)
        loss = lambda: twins.contrastive_loss(model, a, b)  # noqa: E731
    else:
        from dlbasics.train.contrastive import ContrastiveTask

        model = lib.models.create("simclr", in_channels=1)
        opt = lib.optim.Adam(model.parameters(), lr=1e-3)
        task = ContrastiveTask(model, opt)
        views = itertools.cycle([v1, v2])  # the "augmentation" hands out v1, then v2, at every step
        loss = lambda: task.views_loss(model, v1, lambda x: next(views))  # noqa: E731
    return train_step(lambda _: loss(), lambda out, _: out, opt, None, None)


WORKLOADS: dict[str, tuple[str, Callable[[Any], Callable[[], None]]]] = {
    "mlp": ("MLP 784-512-256-10, batch 128, Adam", mlp),
    "mlp1024": ("MLP 784-512-256-10, batch 1024, Adam", lambda lib: mlp(lib, 1024)),
    "lenet": ("LeNet-style CNN, 1x28x28, batch 64, Adam", lenet),
    "resnet20": ("ResNet-20, 3x32x32, batch 32, Adam", resnet20),
    "conv": ("one conv 16->16 3x3 on 32x32, batch 32 (fwd + bwd)", conv_layer),
    "gpt": ("GPT 4 layers x 4 heads x 128, T 64, batch 12, AdamW", lambda lib: language_model(lib, "gpt")),
    "char_lstm": ("char-LSTM 2 x 256, T 64, batch 12, AdamW", lambda lib: language_model(lib, "char_lstm")),
    "seq2seq": ("seq2seq LSTM 256, batch 64 verse pairs, Adam", lambda lib: translator(lib, "seq2seq")),
    "seq2seq_attention": ("seq2seq + Bahdanau attention, batch 64 verse pairs, Adam",
                          lambda lib: translator(lib, "seq2seq", attention="bahdanau")),
    "transformer": ("Transformer 3+3 x 256, batch 64 verse pairs, Adam", lambda lib: translator(lib, "transformer")),
    "bert": ("BERT-Tiny masked LM, batch 64 x 64, vocabulary 21,903, AdamW", bert),
    "vit": ("ViT 7x7 patches, 4 x 64, 4 heads, 1x28x28, batch 128, AdamW", vit),
    "gan": ("MLP GAN 64-256-512-784 / 784-512-256-1, D + G step, batch 64, Adam", lambda lib: gan(lib, "gan")),
    "dcgan": ("DCGAN 28x28 (ConvT 128-64-1 / conv 64-128), D + G step, batch 64, Adam",
              lambda lib: gan(lib, "dcgan")),
    "simclr": ("SimCLR conv 32-64-128 + head, 2 x 256 views, NT-Xent, Adam", simclr),
}


# ---- measurement ----------------------------------------------------------------------------------
def step_times_ms(step: Callable[[], Any], steps: int, warmup: int) -> np.ndarray:
    """The wall time of each of ``steps`` calls, in ms, after ``warmup`` calls."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return np.array(times) * 1e3


def worker(workload: str, lib: str, steps: int, warmup: int) -> dict[str, float]:
    if lib == "torch":
        import torch

        torch.set_num_threads(THREADS)
    _, make = WORKLOADS[workload]
    ms = step_times_ms(make(importlib.import_module(lib)), steps, warmup)
    return {"median_ms": float(np.median(ms)), "p10_ms": float(np.percentile(ms, 10)),
            "p90_ms": float(np.percentile(ms, 90)),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_in_subprocess(workload: str, lib: str, steps: int, warmup: int) -> dict[str, float]:
    env = dict(os.environ, OMP_NUM_THREADS=str(THREADS), OPENBLAS_NUM_THREADS=str(THREADS))
    out = subprocess.run([sys.executable, __file__, "--worker", workload, lib, "--steps", str(steps),
                          "--warmup", str(warmup)], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(workload: str, steps: int, warmup: int, repeats: int) -> dict[str, dict[str, float]]:
    """Both libraries, alternating, ``repeats`` fresh processes each: median step time, highest peak RSS."""
    runs: dict[str, list[dict[str, float]]] = {"dlbasics": [], "torch": []}
    for _ in range(repeats):
        for lib in runs:
            runs[lib].append(run_in_subprocess(workload, lib, steps, warmup))
    return {lib: {"median_ms": float(np.median([r["median_ms"] for r in rs])),
                  "peak_rss_mib": max(r["peak_rss_mib"] for r in rs)} for lib, rs in runs.items()}


CONV_FLOP = 3 * 2 * 32 * 32 * 32 * 16 * 16 * 9  # forward + two backward GEMMs, 2 flops per multiply-add


def gemm_peak(n: int = 2048, repeats: int = 10) -> float:
    """GFLOP/s of NumPy's float32 matmul on a large square product: the machine's attainable peak here."""
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    a @ a
    best = min(_timed(lambda: a @ a) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(f: Callable[[], Any]) -> float:
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def table(results: dict[str, dict[str, dict[str, float]]]) -> str:
    lines = ["| workload | dlbasics ms/step | PyTorch ms/step | ratio (dl / torch) | peak RSS dl / torch (MiB) |",
             "|---|---:|---:|---:|---:|"]
    for name, r in results.items():
        d, t = r["dlbasics"], r["torch"]
        lines.append(f"| {WORKLOADS[name][0]} | {d['median_ms']:.2f} | {t['median_ms']:.2f} | "
                     f"{d['median_ms'] / t['median_ms']:.2f} | {d['peak_rss_mib']:.0f} / {t['peak_rss_mib']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", nargs=2, metavar=("WORKLOAD", "LIB"), help=argparse.SUPPRESS)
    ap.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3, help="fresh processes per library and workload")
    ap.add_argument("--write", metavar="MD", help="also write the table into this Markdown file")
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], args.worker[1], args.steps, args.warmup)))
        return
    results = {w: measure(w, args.steps, args.warmup, args.repeats) for w in args.workloads}
    md = table(results)
    if "conv" in results:
        peak = gemm_peak()
        rates = {lib: CONV_FLOP / (results["conv"][lib]["median_ms"] / 1e3) / 1e9 for lib in ("dlbasics", "torch")}
        md += (f"\n\nConv layer throughput: dlbasics {rates['dlbasics']:.0f} GFLOP/s, PyTorch {rates['torch']:.0f} "
               f"GFLOP/s; NumPy float32 GEMM peak on this machine (2048^3, same run) {peak:.0f} GFLOP/s.")
    print(md)
    if args.write:
        write_table(args.write, md, args.steps, args.warmup, args.repeats)


START, END = "<!-- bench_train_step:start -->", "<!-- bench_train_step:end -->"


def write_table(path: str, md: str, steps: int, warmup: int, repeats: int) -> None:
    """Replace the block between the markers in ``path`` (the notes around it are kept)."""
    import torch

    command = " ".join(["python benchmarks/bench_train_step.py", *sys.argv[1:]])
    block = (f"{START}\nCommand: `{command}`  \n"
             f"One training step (forward + backward + optimizer step), float32, {THREADS} threads, median of "
             f"{steps} steps after {warmup} warm-up steps, in {repeats} fresh processes per library and workload "
             f"(alternating; the median of the {repeats}), all in one run. Machine: {platform.machine()}, "
             f"{os.cpu_count()} cores; NumPy {np.__version__}, PyTorch {torch.__version__}; "
             f"{time.strftime('%Y-%m-%d')}.\n\n{md}\n{END}")
    text = Path(path).read_text() if os.path.exists(path) else f"# Benchmarks\n\n{START}\n{END}\n"
    if START not in text or END not in text:
        text += f"\n{START}\n{END}\n"
    head, rest = text.split(START, 1)
    text = head + block + rest.split(END, 1)[1]
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)

if __name__ == "__main__":
    main()

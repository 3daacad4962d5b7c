"""The compiled kernels against the NumPy path and PyTorch: the memory-bound ops alone (BatchNorm, Adam, pooling),
and where a ResNet-20 training step spends its time, op by op, with and without the kernels (in one process,
alternating).

    python benchmarks/bench_kernels.py            # tables on stdout (Markdown)

Op timings: median of --steps calls after warm-up. The ResNet-20 breakdown times each op class's forward and
backward through wrappers (the wrappers add ~1 µs a call) over --steps training steps of the benchmark's
ResNet-20 (benchmarks/bench_train_step.py), once with ``kernels.JIT`` off and once on; PyTorch runs in its own
process.
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
THREADS = 2


def _median_ms(f: Callable[[], object], steps: int, warmup: int = 5) -> float:
    from bench_train_step import step_times_ms

    return float(np.median(step_times_ms(f, steps, warmup)))


def bn_relu_step(lib, shape=(32, 16, 32, 32)):
    """BatchNorm2d + ReLU, forward and backward, training mode, on a channels-last input (as a conv's output is
    in both libraries): dlbasics' fused BatchNormReLU2d, PyTorch's BatchNorm2d then ReLU."""
    n, c, h, w = shape
    data = np.random.default_rng(0).standard_normal((n, h, w, c)).astype(np.float32).transpose(0, 3, 1, 2)
    if lib.__name__ == "torch":
        x = lib.tensor(np.ascontiguousarray(data)).contiguous(memory_format=lib.channels_last).requires_grad_()
        layer = lib.nn.Sequential(lib.nn.BatchNorm2d(c), lib.nn.ReLU())
    else:
        x = lib.tensor(data, requires_grad=True)
        x.data = data  # the NCHW view of NHWC memory (the constructor copies C-ordered, as torch.tensor)
        layer = lib.nn.BatchNormReLU2d(c)
    g = np.random.default_rng(1).standard_normal((n, h, w, c)).astype(np.float32).transpose(0, 3, 1, 2)
    if lib.__name__ == "torch":  # the upstream gradient channels-last too
        g = lib.tensor(np.ascontiguousarray(g)).contiguous(memory_format=lib.channels_last)
    else:
        gt = lib.tensor(g)
        gt.data = g
        g = gt

    def step():
        x.grad = None
        layer(x).backward(g)

    return step


def adam_step(lib, n=535_000):
    p = lib.nn.Parameter(lib.tensor(np.random.default_rng(0).standard_normal(n).astype(np.float32)))
    p.grad = lib.tensor(np.random.default_rng(1).standard_normal(n).astype(np.float32))
    if lib.__name__ == "dlbasics":
        p.grad = p.grad.data
    opt = lib.optim.Adam([p], lr=1e-3)
    return opt.step


def pool_step(lib, kind, kernel, stride, shape, layout):
    """One pooling layer, forward and backward, on an input laid out as the conv before it leaves it: dlbasics'
    planar and Toeplitz convs (LeNet's, AlexNet's first) give (N, H, C, W) in memory, its others channels-last.
    PyTorch gets NCHW for the first (its conv's output there) and channels-last for the second, the gradient in
    the output's layout in both."""
    rng = np.random.default_rng(0)
    perm = (0, 2, 1, 3) if layout == "nhcw" else (0, 2, 3, 1)  # the axes in memory order
    data = rng.standard_normal([shape[a] for a in perm]).astype(np.float32).transpose(np.argsort(perm))
    make = getattr(lib.nn, kind)
    layer = make(kernel, stride=stride)
    if lib.__name__ == "torch":
        fmt = lib.channels_last if layout == "nhwc" else lib.contiguous_format
        x = lib.tensor(np.ascontiguousarray(data)).contiguous(memory_format=fmt).requires_grad_()
        g = lib.randn(layer(x).shape).contiguous(memory_format=fmt)
    else:
        x = lib.tensor(data, requires_grad=True)
        x.data = data  # (the constructor copies C-ordered)
        out = layer(x).data
        g = lib.tensor(np.zeros(1, np.float32))
        g.data = np.empty_like(out)  # the output's layout
        g.data[...] = rng.standard_normal(out.shape)

    def step():
        x.grad = None
        layer(x).backward(g)

    return step


POOL_OPS = {
    "MaxPool2d(2) fwd+bwd (64, 6, 28, 28), (N, H, C, W): LeNet's": ("MaxPool2d", 2, 2, (64, 6, 28, 28), "nhcw"),
    "AvgPool2d(2) fwd+bwd (64, 6, 28, 28), (N, H, C, W): LeNet-5's S2": ("AvgPool2d", 2, 2, (64, 6, 28, 28), "nhcw"),
    "MaxPool2d(3, 2) fwd+bwd (32, 32, 28, 28), (N, H, C, W): AlexNet's 1st": ("MaxPool2d", 3, 2, (32, 32, 28, 28),
                                                                            "nhcw"),
    "MaxPool2d(3, 2) fwd+bwd (32, 64, 13, 13), channels-last: AlexNet's 2nd": ("MaxPool2d", 3, 2, (32, 64, 13, 13),
                                                                              "nhwc"),
}
OPS = {"BatchNorm2d + ReLU fwd+bwd (32, 16, 32, 32)": bn_relu_step, "Adam, 535k parameters": adam_step,
       **{name: (lambda lib, args=args: pool_step(lib, *args)) for name, args in POOL_OPS.items()}}


def torch_worker(steps: int) -> dict[str, float]:
    import torch

    torch.set_num_threads(THREADS)
    out = {name: _median_ms(make(torch), steps) for name, make in OPS.items()}
    import bench_train_step as b

    out["ResNet-20 step"] = _median_ms(b.resnet20(torch), max(10, steps // 10), warmup=3)
    return out


def dl_ops(steps: int) -> dict[str, dict[str, float]]:
    import dlbasics as dl
    from dlbasics import kernels

    out: dict[str, dict[str, float]] = {}
    for jit in (False, True):
        kernels.JIT = jit
        out["kernels" if jit else "numpy"] = {name: _median_ms(make(dl), steps) for name, make in OPS.items()}
    return out


def resnet_breakdown(steps: int) -> dict[str, dict[str, float]]:
    """ms per training step spent in each op class (forward + backward), with and without kernels."""
    import bench_train_step as b

    import dlbasics as dl
    from dlbasics import kernels
    from dlbasics.autograd.function import Function

    spent: collections.Counter = collections.Counter()
    wrapped = {}
    def timer(f, name):
        def timed(self, *a, **k):
            t = time.perf_counter()
            try:
                return f(self, *a, **k)
            finally:
                spent[name] += time.perf_counter() - t

        return timed

    for cls in _subclasses(Function):
        for meth in ("forward", "backward"):
            if meth in vars(cls):
                wrapped[(cls, meth)] = vars(cls)[meth]
                setattr(cls, meth, timer(vars(cls)[meth], cls.__name__))
    result = {}
    try:
        for jit in (False, True):
            kernels.JIT = jit
            step = b.resnet20(dl)
            for _ in range(3):
                step()
            spent.clear()
            t = time.perf_counter()
            for _ in range(steps):
                step()
            total = (time.perf_counter() - t) / steps * 1e3
            per = {k: v / steps * 1e3 for k, v in spent.most_common()}
            result["kernels" if jit else "numpy"] = {"step": total, **per}
    finally:
        for (cls, meth), f in wrapped.items():
            setattr(cls, meth, f)
    return result


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_worker:
        print(json.dumps(torch_worker(args.steps)))
        return
    from threadpoolctl import threadpool_limits

    threadpool_limits(THREADS)
    theirs = json.loads(subprocess.run([sys.executable, __file__, "--torch-worker", "--steps", str(args.steps)],
                                       capture_output=True, text=True, check=True).stdout)
    ours = dl_ops(args.steps)
    print("| op | NumPy path | kernels | PyTorch | kernels / PyTorch |\n|---|---:|---:|---:|---:|")
    for name in OPS:
        n, k, t = ours["numpy"][name], ours["kernels"][name], theirs[name]
        print(f"| {name} | {n:.3f} ms | {k:.3f} ms | {t:.3f} ms | {k / t:.2f} |")
    br = resnet_breakdown(max(10, args.steps // 5))
    print(f"\nResNet-20 step (batch 32), ms per step by op (forward + backward); PyTorch's step "
          f"{theirs['ResNet-20 step']:.1f} ms in its own process\n")
    print("| op | NumPy path | kernels |\n|---|---:|---:|")
    names = list(dict.fromkeys([*br["numpy"], *br["kernels"]]))
    for name in names:
        a, c = br["numpy"].get(name, 0.0), br["kernels"].get(name, 0.0)
        if name == "step" or max(a, c) >= 0.5:
            print(f"| {name} | {a:.1f} | {c:.1f} |")


if __name__ == "__main__":
    main()

"""Sort-of-CLEVR visual question answering, dlbasics beside its PyTorch twin (``benchmarks/twins/relation_net.py``),
each library in its own process, one after the other: training time and test accuracy by question type side by side,
both sides scored by the same dlbasics code, beside the majority answer of each question type. It is also the
calibration tool of the recipe (``--sides torch`` and a long ``--steps``).

    python benchmarks/bench_vqa.py                                           # CNN+MLP and RN, FiLM, both sides
    python benchmarks/bench_vqa.py --models relation_net --sides torch --steps 20000 --eval-every 2000
    python benchmarks/bench_vqa.py --steps 20 --images 50                    # a smoke run

Both sides train on the same arrays (``--images`` scenes of ``clevr.scenes`` with 10 + 10 questions each, seed 0), in
the same batches of (image, question) pairs (each epoch the next permutation of one NumPy generator seeded 0, cut into
batches of 64), with Adam at ``--lr``; each side initialises its own weights with its own library (seed 0). Both
workers run ``--threads`` BLAS/OpenMP threads. Measured, per (model, side): ``seconds``, the wall time of the
training steps only (forward, loss, ``loss.item()``, backward, Adam step), and the test accuracies (200 other scenes,
4,000 questions) after every ``--eval-every`` steps and at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench_dense import batches, save, timing
from workers import run_worker

HERE = Path(__file__).resolve().parent
SIDES = (("dlbasics", "dlbasics"), ("torch", "PyTorch"))
N_TEST, SEED, EVAL_BATCH = 200, 0, 500
LABELS = {"vqa_cnn_mlp": "CNN+MLP", "relation_net": "RN"}


def make_data(n_images: int) -> dict[str, np.ndarray]:
    """Training and test scenes: images (N, 3, 64, 64), questions (N, 20, 11), answers (N, 20)."""
    from dlbasics.data.datasets.clevr import scenes

    x, q, a = scenes(n_images, [SEED, 10])
    xt, qt, at = scenes(N_TEST, [SEED, 12])
    return {"x_train": x, "q_train": q, "a_train": a, "x_test": xt, "q_test": qt, "a_test": at}


def options(args: argparse.Namespace, model: str) -> dict[str, Any]:
    extra = {"image_size": 64} if model == "vqa_cnn_mlp" else {}
    return {"width": args.width, "hidden_size": args.hidden_size, "film": args.film, **extra}


# ---- the workers: one model, one library, in this process ---------------------------------------------------
def dlbasics_worker(args: argparse.Namespace, data: dict[str, np.ndarray]) -> dict[str, Any]:
    import dlbasics as dl
    from dlbasics import models, optim
    from dlbasics.nn import functional as F
    from dlbasics.train.task import evaluating

    dl.manual_seed(SEED)
    model = models.create(args.models[0], in_channels=3, num_classes=10, question_size=11,
                          **options(args, args.models[0]))
    opt = optim.Adam(model.parameters(), lr=args.lr)

    def predict(x: np.ndarray, q: np.ndarray) -> np.ndarray:
        with evaluating(model):
            return model(x, q).data.argmax(1)

    model.train()
    return train(lambda x, q, a: F.cross_entropy(model(x, q), a), opt, predict, data, args)


def torch_worker(args: argparse.Namespace, data: dict[str, np.ndarray]) -> dict[str, Any]:
    import torch
    from torch.nn import functional as F

    sys.path.insert(0, str(HERE))
    from twins.relation_net import CNNMLP, RelationNet

    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    cls = RelationNet if args.models[0] == "relation_net" else CNNMLP
    model = cls(3, 10, 11, **options(args, args.models[0]))
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    t = torch.from_numpy

    def predict(x: np.ndarray, q: np.ndarray) -> np.ndarray:
        model.eval()
        with torch.no_grad():
            out = model(t(x), t(q)).argmax(1).numpy()
        model.train()
        return out

    return train(lambda x, q, a: F.cross_entropy(model(t(x), t(q)), t(a)), opt, predict, data, args)


def train(loss_of: Any, opt: Any, predict: Any, data: dict[str, np.ndarray],
          args: argparse.Namespace) -> dict[str, Any]:
    """The timed training loop of either side, with the test accuracies every ``args.eval_every`` steps (untimed)."""
    per = data["q_train"].shape[1]
    q, a = data["q_train"].reshape(-1, 11), data["a_train"].reshape(-1)
    losses, curve, seconds = [], [], 0.0
    for step, idx in enumerate(batches(len(a), args.batch_size, args.steps), 1):
        start = time.perf_counter()
        loss = loss_of(data["x_train"][idx // per], q[idx], a[idx])
        losses.append(float(loss.item()))
        opt.zero_grad()
        loss.backward()
        opt.step()
        seconds += time.perf_counter() - start
        if step == args.steps or (args.eval_every and step % args.eval_every == 0):
            curve.append({"step": step, "seconds": round(seconds, 1), **test_accuracies(predict, data)})
            print(json.dumps(curve[-1]), file=sys.stderr, flush=True)
    return timing(seconds, losses) | curve[-1] | {"curve": curve}


def test_accuracies(predict: Any, data: dict[str, np.ndarray]) -> dict[str, float]:
    from dlbasics.data.datasets.clevr import question_type
    from dlbasics.train.vqa import vqa_accuracies

    per = data["q_test"].shape[1]
    q, a = data["q_test"].reshape(-1, 11), data["a_test"].reshape(-1)
    images = np.repeat(np.arange(len(data["x_test"])), per)
    pred = np.concatenate([predict(data["x_test"][images[s:s + EVAL_BATCH]], q[s:s + EVAL_BATCH])
                           for s in range(0, len(a), EVAL_BATCH)])
    return vqa_accuracies(pred == a, question_type(q))


# ---- the parent: run both sides of every model ----------------------------------------------------------------
def run_all(args: argparse.Namespace) -> dict[str, Any]:
    from dlbasics.train.vqa import majority_baseline

    data = make_data(args.images)
    flat = {k: v.reshape(-1, 11) if k.startswith("q") else v.reshape(-1) for k, v in data.items() if k[0] in "qa"}
    results: dict[str, Any] = {"baseline": majority_baseline(flat["q_train"], flat["a_train"], flat["q_test"],
                                                             flat["a_test"])}
    with tempfile.TemporaryDirectory(prefix="bench_vqa-") as tmp:
        path = Path(tmp) / "data.npz"
        save(path, **data)
        for model in args.models:
            results[model] = {}
            for side, label in SIDES:
                if side not in args.sides:
                    continue
                argv = ["--worker", side, "--models", model, "--data", str(path), *worker_flags(args)]
                r = run_worker(__file__, argv, args.threads)
                results[model][side] = r
                print(f"{LABELS[model]}, {label}: {r['seconds']:.1f} s, {accuracy_text(r)}", file=sys.stderr,
                      flush=True)
    return results


def worker_flags(args: argparse.Namespace) -> list[str]:
    return ["--steps", str(args.steps), "--lr", str(args.lr), "--batch-size", str(args.batch_size), "--width",
            str(args.width), "--hidden-size", str(args.hidden_size), "--threads", str(args.threads), "--eval-every",
            str(args.eval_every), *(["--film"] if args.film else [])]


def accuracy_text(r: dict[str, Any]) -> str:
    return (f"non-relational {r['accuracy_nonrelational']:.3f}, relational {r['accuracy_relational']:.3f} "
            f"(count {r['accuracy_count_same_shape']:.3f})")


def report(args: argparse.Namespace, results: dict[str, Any]) -> list[str]:
    import torch

    lines = [f"Sort-of-CLEVR, dlbasics vs PyTorch {torch.__version__} (NumPy {np.__version__}), {args.threads} "
             f"thread(s) per side, float32, {args.images:,} training scenes (20 questions each), batch "
             f"{args.batch_size}, Adam {args.lr:g}, {args.steps:,} steps{', FiLM' if args.film else ''}; accuracy "
             f"on {N_TEST} test scenes ({N_TEST * 20:,} questions).", "",
             "| model | side | seconds | ms/step | final loss | non-relational | relational |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for model in args.models:
        for side, label in SIDES:
            if (s := results[model].get(side)) is not None:
                lines.append(f"| {LABELS[model]} | {label} | {s['seconds']:.1f} | {s['ms_per_step']:.0f} | "
                             f"{s['final_loss']:.4g} | {s['accuracy_nonrelational']:.3f} | "
                             f"{s['accuracy_relational']:.3f} |")
    b = results["baseline"]
    lines.append(f"| majority answer of each question type | - | - | - | - | {b['accuracy_nonrelational']:.3f} | "
                 f"{b['accuracy_relational']:.3f} |")
    if all(len(results[m]) == 2 for m in args.models):
        ratios = ", ".join(f"{LABELS[m]} {results[m]['dlbasics']['seconds'] / results[m]['torch']['seconds']:.2f}"
                           for m in args.models)
        lines += ["", f"Training time dlbasics / PyTorch: {ratios}."]
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--models", nargs="+", default=["vqa_cnn_mlp", "relation_net"], choices=list(LABELS))
    p.add_argument("--sides", nargs="+", default=[s for s, _ in SIDES], choices=[s for s, _ in SIDES])
    p.add_argument("--images", type=int, default=9800, help="training scenes (the paper: 9,800)")
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--width", type=int, default=24)
    p.add_argument("--hidden-size", type=int, default=256)
    p.add_argument("--film", action="store_true")
    p.add_argument("--eval-every", type=int, default=0, help="test accuracies every this many steps (0: at the end)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", help="write the results here")
    p.add_argument("--worker", choices=[s for s, _ in SIDES], help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        with np.load(args.data, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
        worker = dlbasics_worker if args.worker == "dlbasics" else torch_worker
        print(json.dumps(worker(args, data)))
        return
    results = run_all(args)
    print("\n".join(report(args, results)))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results}, indent=1))


if __name__ == "__main__":
    main()

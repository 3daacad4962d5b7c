"""The dense and structured vision models of the zoo end to end, dlbasics beside its PyTorch twin
(``benchmarks/twins``), each library in its own process, one after the other: training time and test quality side by
side, both sides scored by the same dlbasics code.

    python benchmarks/bench_dense.py                                            # all three tasks, 1 thread per side
    python benchmarks/bench_dense.py --tasks seg det pose --threads 1 --json dense.json --figure dense.png
    python benchmarks/bench_dense.py --steps 10                                 # a smoke run

The tasks, each trained with its zoo recipe's budget (batch 32, Adam at the recipe's learning rate, float32):

- ``seg``: U-Net (``unet``) on shapes-seg, pixel cross-entropy, 300 steps (its recipe is in epochs; 300 steps is
  the budget of ``tests/models/test_dense_learns.py``), lr 1e-3;
- ``det``: CenterNet (``centernet``) on shapes-det, the paper's focal + 0.1 L1(size) + L1(offset), 400 steps, lr 2e-3;
- ``pose``: keypoint_net on shapes-pose, the MSE of the joints' heatmaps, 400 steps, lr 2e-3.

Both sides train on the same arrays (the 2,000 training images of the dlbasics data set, seed 0), in the same batches
(each epoch the next permutation of one NumPy generator seeded 0, cut into batches of 32, the epoch's last batch
smaller), on the same targets (dlbasics' NumPy ``encode``: a dlbasics model instance makes the torch side's
targets too); each side initialises its own weights with its own library (seed 0). Both workers run ``--threads``
BLAS/OpenMP threads, set in the worker's environment before NumPy and torch load, and ``torch.set_num_threads``.

Measured, per (task, side): ``seconds``, the wall time of the training steps only - gathering the batch, encoding its
targets, forward, loss, ``loss.item()``, backward, Adam step - not the data generation, the model's construction or
the evaluation; ``ms/step``; the mean loss of the last 10 steps. After training, each side predicts (eval mode, no
gradients) the same 500 test images and saves its raw outputs (class maps, CenterNet's three heads, heatmaps) to an
``.npz``; the parent decodes and scores both with ``dlbasics.train.vision_metrics``: segmentation mIoU and pixel
accuracy (beside an all-background prediction), detection mAP@0.5, mAP@0.75 and COCO AP@[.5:.95] of the boxes of
``CenterNet.decode``, pose PCK@0.1, PCK@0.05 and the mean joint error in pixels of ``KeypointNet.decode`` (beside the
training set's mean pose).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from workers import run_worker

HERE = Path(__file__).resolve().parent
SIDES = (("dlbasics", "dlbasics"), ("torch", "PyTorch"))
N_TRAIN, N_TEST, SEED, EVAL_BATCH, FIGURE_IMAGES = 2000, 500, 0, 100, 6


@dataclass(frozen=True)
class Task:
    model: str
    problem: str
    data: str  # the dlbasics data set
    steps: int | None  # None: the recipe's


TASKS = {"seg": Task("unet", "segmentation", "shapes-seg", 300),
         "det": Task("centernet", "detection", "shapes-det", None),
         "pose": Task("keypoint_net", "pose", "shapes-pose", None)}


def recipe(name: str) -> dict[str, Any]:
    from dlbasics.models.registry import info

    return info(name).recipe


def budget(task: str, steps: int | None) -> tuple[int, int, float]:
    """(steps, batch size, learning rate) of ``task``: the recipe's, the steps overridden by ``steps``."""
    r = recipe(TASKS[task].model)
    n = steps or TASKS[task].steps or r["steps"]
    return int(n), int(r["batch_size"]), float(r["lr"])


def num_classes(task: str) -> int:
    from dlbasics.data.datasets.shapes import INFO

    return int(INFO[TASKS[task].data].num_classes)


def batches(n: int, batch_size: int, steps: int, seed: int = SEED) -> list[np.ndarray]:
    """The index of each training step's batch: every epoch a permutation of ``n`` (the next draw of one generator),
    cut into batches of ``batch_size``, the last one smaller; ``steps`` batches in all."""
    rng, out = np.random.default_rng(seed), []
    while len(out) < steps:
        order = rng.permutation(n)
        out += [order[i:i + batch_size] for i in range(0, n, batch_size)]
    return out[:steps]


def make_data(task: str) -> dict[str, np.ndarray]:
    """The training and test arrays of ``task``'s data set (seed 0)."""
    from dlbasics.data.datasets import shapes

    make = {"seg": shapes.shapes_seg, "det": shapes.shapes_det, "pose": shapes.shapes_pose}[task]
    splits = make(n_train=N_TRAIN, n_val=1, n_test=N_TEST, seed=SEED)
    (x, y), (xt, yt) = splits.train.arrays, splits.test.arrays
    return {"x_train": np.asarray(x), "y_train": np.asarray(y), "x_test": np.asarray(xt), "y_test": np.asarray(yt)}


# ---- the workers: one task, one library, in this process ---------------------------------------------------
def dlbasics_worker(task: str, steps: int, data: Path, out: Path) -> dict[str, Any]:
    import dlbasics as dl
    from dlbasics import models, optim
    from dlbasics.nn import functional as F
    from dlbasics.train.task import evaluating

    arrays = np.load(data, allow_pickle=False)
    x, y, xt = arrays["x_train"], arrays["y_train"], arrays["x_test"]
    n_steps, batch_size, lr = budget(task, steps)
    dl.manual_seed(SEED)
    model = models.create(TASKS[task].model, in_channels=x.shape[1], num_classes=num_classes(task))
    opt = optim.Adam(model.parameters(), lr=lr)

    def loss_of(xb: np.ndarray, yb: np.ndarray) -> Any:
        out = model(xb)
        if task == "seg":
            return F.cross_entropy(out, yb)
        if task == "det":
            return model.loss(out, model.encode(yb, tuple(out[0].shape[2:])))[0]
        return F.mse_loss(out, model.encode(yb, tuple(out.shape[2:])))

    model.train()
    seconds, losses = train_steps(loss_of, opt, x, y, batch_size, n_steps)
    with evaluating(model):
        outs = [model(xt[i:i + EVAL_BATCH]) for i in range(0, len(xt), EVAL_BATCH)]
    if task == "det":
        save(out, **{k: np.concatenate([o[j].data for o in outs]) for j, k in enumerate(("heat", "size", "offset"))})
    else:
        save(out, **worker_outputs(task, np.concatenate([o.data for o in outs])))
    return timing(seconds, losses)


def torch_worker(task: str, steps: int, threads: int, data: Path, out: Path) -> dict[str, Any]:
    import torch
    from torch.nn import functional as F

    from dlbasics import models

    sys.path.insert(0, str(HERE))
    twin = __import__(f"twins.{TASKS[task].model}", fromlist=[TASKS[task].model])
    torch.set_num_threads(threads)
    arrays = np.load(data, allow_pickle=False)
    x, y, xt = arrays["x_train"], arrays["y_train"], arrays["x_test"]
    n_steps, batch_size, lr = budget(task, steps)
    torch.manual_seed(SEED)
    model = getattr(twin, TASKS[task].model)(x.shape[1], num_classes(task))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    # the targets' maker: a dlbasics model instance, whose ``encode`` is NumPy (its weights are not used)
    encoder = models.create(TASKS[task].model, in_channels=x.shape[1], num_classes=num_classes(task))

    def loss_of(xb: np.ndarray, yb: np.ndarray) -> Any:
        out = model(torch.from_numpy(xb))
        if task == "seg":
            return F.cross_entropy(out, torch.from_numpy(yb))
        if task == "det":
            return twin.centernet_loss(out, encoder.encode(yb, tuple(out[0].shape[2:])))[0]
        return twin.pose_loss(out, encoder.encode(yb, tuple(out.shape[2:])))

    model.train()
    seconds, losses = train_steps(loss_of, opt, x, y, batch_size, n_steps)
    model.eval()
    with torch.no_grad():
        outs = [model(torch.from_numpy(xt[i:i + EVAL_BATCH])) for i in range(0, len(xt), EVAL_BATCH)]
    if task == "det":
        save(out, **{k: torch.cat([o[j] for o in outs]).numpy() for j, k in enumerate(("heat", "size", "offset"))})
    else:
        save(out, **worker_outputs(task, torch.cat(outs).numpy()))
    return timing(seconds, losses)


def train_steps(loss_of: Any, opt: Any, x: np.ndarray, y: np.ndarray, batch_size: int,
                n_steps: int) -> tuple[float, list[float]]:
    """The timed training loop of either side (both libraries' optimizers and losses speak PyTorch's API): the wall
    time of the steps and each step's loss."""
    losses, start = [], time.perf_counter()
    for idx in batches(len(x), batch_size, n_steps):
        loss = loss_of(x[idx], y[idx])
        losses.append(float(loss.item()))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - start, losses


def worker_outputs(task: str, out: np.ndarray) -> dict[str, np.ndarray]:
    """What a segmentation or pose worker saves of its test outputs: the class maps, or the heatmaps."""
    if task == "seg":
        return {"pred": out.argmax(1).astype(np.uint8)}
    return {"heatmaps": out.astype(np.float32)}


def save(path: Path, **arrays: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def timing(seconds: float, losses: list[float]) -> dict[str, Any]:
    return {"seconds": seconds, "steps": len(losses), "ms_per_step": 1000 * seconds / len(losses),
            "first_loss": losses[0], "final_loss": float(np.mean(losses[-10:]))}


# ---- the parent: run both sides of every task, score them ---------------------------------------------------
def in_process(argv: list[str], threads: int) -> dict[str, Any]:
    return run_worker(__file__, argv, threads)


def decode(task: str, outputs: Any) -> Any:
    """A side's saved test outputs read back as predictions: class maps, per-image detections, or keypoints."""
    import dlbasics as dl
    from dlbasics import models
    from dlbasics.models.keypoint_net import KeypointNet

    if task == "seg":
        return outputs["pred"].astype(np.int64)
    if task == "det":
        detector = models.create("centernet", in_channels=3, num_classes=num_classes("det"))  # for its decode
        return detector.decode(tuple(dl.tensor(outputs[k]) for k in ("heat", "size", "offset")))
    return KeypointNet.decode(outputs["heatmaps"])


def score(task: str, pred: Any, data: dict[str, np.ndarray]) -> dict[str, float]:
    from dlbasics.data.datasets.shapes import CLASSES
    from dlbasics.train.detection import COCO_THRESHOLDS, truths
    from dlbasics.train.vision_metrics import confusion_matrix, detection_ap, pck, segmentation_scores

    y = data["y_test"]
    if task == "seg":
        s = segmentation_scores(confusion_matrix(pred, y, len(CLASSES)), list(CLASSES))
        return {"miou": s["miou"], "pixel_accuracy": s["pixel_accuracy"]}
    if task == "det":
        true, k = truths(y), num_classes("det")
        coco = [detection_ap(pred, true, k, t, "coco")["map"] for t in COCO_THRESHOLDS]
        return {"map50": detection_ap(pred, true, k, 0.5)["map"], "map75": detection_ap(pred, true, k, 0.75)["map"],
                "map": float(np.mean(coco))}
    return {"pck10": pck(pred, y, 0.1), "pck05": pck(pred, y, 0.05),
            "error_px": float(np.linalg.norm(pred - y, axis=2).mean())}


def baseline(task: str, data: dict[str, np.ndarray]) -> tuple[str, dict[str, float]] | None:
    """The trivial prediction beside which a task's scores mean something: all background; the mean pose."""
    if task == "seg":
        return "all background", score(task, np.zeros_like(data["y_test"]), data)
    if task == "pose":
        mean = np.broadcast_to(data["y_train"].mean(0), data["y_test"].shape)
        return "training set's mean pose", score(task, mean, data)
    return None


def run_all(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench_dense-") as tmp:
        for task in args.tasks:
            data = make_data(task)
            data_path = Path(tmp) / f"{task}-data.npz"
            save(data_path, **{k: v for k, v in data.items() if k != "y_test"})
            r: dict[str, Any] = {"steps": budget(task, args.steps)[0]}
            preds = {}
            for side, label in SIDES:
                out = Path(tmp) / f"{task}-{side}.npz"
                argv = ["--worker", side, "--tasks", task, "--threads", str(args.threads), "--data", str(data_path),
                        "--out", str(out), *(["--steps", str(args.steps)] if args.steps else [])]
                r[side] = in_process(argv, args.threads)
                with np.load(out, allow_pickle=False) as outputs:
                    preds[side] = decode(task, outputs)
                r[side] |= score(task, preds[side], data)
                print(f"{task}, {label}: {r[side]['seconds']:.1f} s, " + metrics_text(task, r[side]), file=sys.stderr,
                      flush=True)
            if (base := baseline(task, data)) is not None:
                r["baseline"] = {"name": base[0], **base[1]}
            results[task] = r
            if args.figure:
                figure(task, data, preds, figure_path(Path(args.figure), task))
    return results


METRICS = {"seg": (("miou", "mIoU"), ("pixel_accuracy", "pixel accuracy")),
           "det": (("map50", "mAP@0.5"), ("map75", "mAP@0.75"), ("map", "AP@[.5:.95]")),
           "pose": (("pck10", "PCK@0.1"), ("pck05", "PCK@0.05"), ("error_px", "mean error (px)"))}


def metrics_text(task: str, r: dict[str, Any]) -> str:
    return ", ".join(f"{label} {r[k]:.2f}" if k == "error_px" else f"{label} {r[k]:.3f}" for k, label in METRICS[task])


def report(args: argparse.Namespace, results: dict[str, dict[str, Any]]) -> list[str]:
    import torch

    lines = [f"Dense vision, dlbasics vs PyTorch {torch.__version__} (NumPy {np.__version__}), {args.threads} "
             f"thread(s) per side, float32, batch 32, {N_TRAIN:,} training images; metrics on {N_TEST} test images.",
             "", "| task | side | seconds | ms/step | final loss | test metrics |", "|---|---|---:|---:|---:|---|"]
    for task, r in results.items():
        t = TASKS[task]
        name = f"{t.problem} ({t.model}, {t.data}, {r['steps']:,} steps)"
        for side, label in SIDES:
            s = r[side]
            lines.append(f"| {name} | {label} | {s['seconds']:.1f} | {s['ms_per_step']:.0f} | {s['final_loss']:.4g} | "
                         f"{metrics_text(task, s)} |")
        if "baseline" in r:
            lines.append(f"| {name} | baseline: {r['baseline']['name']} | - | - | - | "
                         f"{metrics_text(task, r['baseline'])} |")
    ratios = ", ".join(f"{TASKS[task].problem} {r['dlbasics']['seconds'] / r['torch']['seconds']:.2f}"
                       for task, r in results.items())
    lines += ["", f"Training time dlbasics / PyTorch: {ratios}.",
              "Seconds: the training steps only (batch, targets by dlbasics' NumPy encode, forward, loss, backward, "
              "Adam); final loss: the mean of the last 10 steps."]
    return lines


def figure_path(path: Path, task: str) -> Path:
    return path.with_name(f"{path.stem}-{task}{path.suffix or '.png'}")


def figure(task: str, data: dict[str, np.ndarray], preds: dict[str, Any], path: Path) -> None:
    """The first test images with each side's predictions: seg rows images, true masks, dlbasics' masks, PyTorch's;
    det and pose rows dlbasics' then PyTorch's drawing (true boxes or skeleton in white)."""
    from dlbasics.train.detection import draw_boxes, truths
    from dlbasics.train.pose import draw_skeletons
    from dlbasics.train.segmentation import PALETTE, rgb_pixels, save_rows

    k = FIGURE_IMAGES
    x, y = data["x_test"][:k], data["y_test"][:k]
    if task == "seg":
        save_rows([rgb_pixels(x), PALETTE[y % len(PALETTE)], *(PALETTE[preds[s][:k] % len(PALETTE)] for s, _ in SIDES)],
                  path)
        return
    from PIL import Image

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_dense-fig-") as tmp:
        for side, _ in SIDES:
            row = Path(tmp) / f"{side}.png"
            if task == "det":
                draw_boxes(x, truths(y), preds[side][:k], row)
            else:
                draw_skeletons(x, y, preds[side][:k], row)
            with Image.open(row) as img:
                rows.append(np.asarray(img.convert("RGB"))[None])
    save_rows(rows, path, scale=1, gap=6)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", nargs="+", choices=list(TASKS), default=list(TASKS))
    ap.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP and torch threads per worker")
    ap.add_argument("--steps", type=int, help="training steps for every task (default: each recipe's budget)")
    ap.add_argument("--json", metavar="OUT", help="write the results as JSON to OUT")
    ap.add_argument("--figure", metavar="PATH", help="write PATH-seg.png, PATH-det.png, PATH-pose.png: test images "
                    "with both sides' predictions")
    ap.add_argument("--worker", choices=[side for side, _ in SIDES], help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.threads < 1 or (args.steps is not None and args.steps < 1):
        ap.error("--threads and --steps must be >= 1")
    if args.worker:
        task, data, out = args.tasks[0], Path(args.data), Path(args.out)
        run = (dlbasics_worker(task, args.steps, data, out) if args.worker == "dlbasics"
               else torch_worker(task, args.steps, args.threads, data, out))
        print(json.dumps(run))
        return
    results = run_all(args)
    print("\n".join(report(args, results)))
    if args.json:
        from dlbasics.io import atomic_write_bytes

        atomic_write_bytes(Path(args.json), json.dumps({"threads": args.threads, "n_train": N_TRAIN,
                                                        "n_test": N_TEST, "results": results}, indent=1).encode())


if __name__ == "__main__":
    main()

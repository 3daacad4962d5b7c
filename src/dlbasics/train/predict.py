"""Predictions of a saved run for new inputs: ``dlbasics predict RUN_DIR INPUT``.

Inputs are read as the run's data was made: a ``.npy`` array of samples (N, *input_shape) or one sample; a
``.csv`` of features, one sample a row (a header row is skipped); or image files - one, or a folder of
``.png``/``.jpg``/... - converted to the run's channels, resized to its image size, scaled to [0, 1] and
standardized as its training images were. A classifier gives each sample's class, its name and its
probability; a regression model its values.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np

from dlbasics.errors import ConfigError, DataError, DataNotFoundError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def read_inputs(path: str | Path, input_shape: tuple[int, ...], pixel_normalization: Any = None) -> tuple[
        np.ndarray, list[str]]:
    """The samples in ``path`` as float32 (N, *input_shape), and a name for each (file name or row number)."""
    path = Path(path)
    if not path.exists():
        raise DataNotFoundError(f"predict: no such file or folder: {path}")
    if path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES:
        return read_images(path, input_shape, pixel_normalization)
    if path.suffix.lower() == ".npy":
        try:
            x = np.load(path, allow_pickle=False)
        except ValueError as e:
            raise DataError(f"{path}: not a readable .npy array ({e})") from None
    elif path.suffix.lower() == ".csv":
        x = read_csv(path)
    else:
        raise ConfigError(f"predict: {path}: give a .npy array, a .csv of features, or image files "
                          f"({', '.join(IMAGE_SUFFIXES)}) or a folder of them")
    if x.dtype.kind not in "biuf":
        raise DataError(f"{path}: holds {x.dtype} values, not numbers")
    shape = tuple(input_shape)
    if x.shape == shape:
        x = x[None]
    elif x.ndim == 2 and len(shape) > 1 and x.shape[1] == int(np.prod(shape)):
        x = x.reshape(len(x), *shape)  # flat rows of an image's pixels
    if x.shape[1:] != shape:
        raise DataError(f"{path}: samples of shape {x.shape[1:]} (array {x.shape}) do not fit the model, which takes "
                        f"{shape} (an array (N, {', '.join(map(str, shape))}))")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        bad = int(np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))[0])
        raise DataError(f"{path}: sample {bad} holds NaN or inf")
    return x, [str(i) for i in range(len(x))]


def read_csv(path: Path) -> np.ndarray:
    text = path.read_text(encoding="utf-8")
    rows = [r for r in csv.reader(io.StringIO(text)) if r and any(c.strip() for c in r)]
    if rows and not _numbers(rows[0]):
        rows = rows[1:]  # a header
    for i, r in enumerate(rows):
        if not _numbers(r):
            raise DataError(f"{path}: row {i + 1} is not all numbers: {r[:5]}")
    if not rows or len({len(r) for r in rows}) != 1:
        raise DataError(f"{path}: expected rows of numbers of one length, got {sorted({len(r) for r in rows})}")
    return np.array([[float(c) for c in r] for r in rows], dtype=np.float64)


def _numbers(row: list[str]) -> bool:
    try:
        [float(c) for c in row]
    except ValueError:
        return False
    return True


def read_images(path: Path, input_shape: tuple[int, ...], pixel_normalization: Any = None) -> tuple[
        np.ndarray, list[str]]:
    """Image files as the run's inputs: (N, C, H, W) float32 in [0, 1], standardized if the data was."""
    from PIL import Image  # matplotlib's dependency: there wherever dlbasics is

    if len(input_shape) != 3:
        raise DataError(f"predict: the model takes samples of shape {tuple(input_shape)}, not images; give a .npy or "
                        ".csv file")
    channels, height, width = input_shape
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if path.is_dir() else [path]
    if not files:
        raise DataNotFoundError(f"predict: {path} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
    out = np.empty((len(files), channels, height, width), dtype=np.float32)
    for i, f in enumerate(files):
        try:
            with Image.open(f) as im:
                im = im.convert("L" if channels == 1 else "RGB").resize((width, height), Image.BILINEAR)
                a = np.asarray(im, dtype=np.float32) / np.float32(255)
        except OSError as e:
            raise DataError(f"{f}: not a readable image ({e})") from None
        out[i] = a[None] if channels == 1 else a.transpose(2, 0, 1)[:channels]
    if pixel_normalization is not None:
        mean, std = (np.asarray(v, dtype=np.float32).reshape(-1, 1, 1) for v in pixel_normalization)
        out -= mean
        out /= std
    return out, [f.name for f in files]


def predict(model: Any, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """The model's outputs for samples ``x`` (N, ...), in eval mode, without a graph, a batch at a time."""
    from dlbasics.autograd.grad_mode import no_grad
    from dlbasics.tensor import Tensor

    model.eval()
    with no_grad():
        outs = [model(Tensor(x[i:i + batch_size])).data for i in range(0, len(x), batch_size)]
    return np.concatenate(outs) if outs else np.empty((0,), dtype=np.float32)


def predict_files(run_dir: str | Path, input_path: str | Path, out: str | Path | None = None) -> list[str]:
    """Read ``input_path``, predict with the run's model; print lines, or write ``out`` (.csv or .npy)."""
    from dlbasics.train import rundir

    run = rundir.open_run(run_dir)
    cfg = run.config
    model = rundir.load_model(run)
    x, names = read_inputs(input_path, tuple(cfg.data.input_shape), cfg.data.pixel_normalization)
    y = predict(model, x)
    classification = cfg.data.problem == "classification"
    if classification:
        z = y - y.max(axis=1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)  # softmax (an ensemble's log-probs give the same)
        label = p.argmax(axis=1)
        classes = cfg.data.classes or [str(i) for i in range(p.shape[1])]
        rows = [[n, int(k), classes[k], float(p[i, k])] for i, (n, k) in enumerate(zip(names, label))]
        header = ["input", "class", "name", "probability"]
        values = p
    else:
        rows = [[n, *map(float, np.atleast_1d(v))] for n, v in zip(names, y)]
        header = ["input", *(f"output_{j}" for j in range(len(rows[0]) - 1))]
        values = y
    if out is None:
        return [" ".join(f"{c:.4f}" if isinstance(c, float) else str(c) for c in r) for r in rows]
    out = Path(out)
    from dlbasics.io import atomic_write_bytes, atomic_write_text

    if out.suffix.lower() == ".npy":
        buf = io.BytesIO()
        np.save(buf, values.astype(np.float32), allow_pickle=False)
        atomic_write_bytes(out, buf.getvalue())
    elif out.suffix.lower() == ".csv":
        text = io.StringIO()
        w = csv.writer(text, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
        atomic_write_text(out, text.getvalue())
    else:
        raise ConfigError(f"--out {out}: write .csv (one row per input) or .npy (the probabilities or values)")
    return [f"{len(rows)} predictions written to {out}"]


__all__ = ["predict", "predict_files", "read_images", "read_inputs"]

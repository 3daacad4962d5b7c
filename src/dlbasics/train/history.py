"""The record of a training run: one row per epoch."""

from __future__ import annotations

import csv
import io
from typing import Any


class History:
    """Per-epoch values by name (``history["val_loss"]`` is a list, one entry per epoch)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []
        self.stopped_early = False

    def append(self, row: dict[str, float]) -> None:
        self.rows.append(dict(row))

    def __getitem__(self, key: str) -> list[float]:
        if self.rows and key not in self.rows[-1]:
            raise KeyError(f"history has no {key!r}; it has {', '.join(self.rows[-1])}")
        return [r[key] for r in self.rows if key in r]

    def __contains__(self, key: str) -> bool:
        return bool(self.rows) and key in self.rows[-1]

    def __len__(self) -> int:
        return len(self.rows)

    def keys(self) -> list[str]:
        return list(self.rows[-1]) if self.rows else []

    @property
    def last(self) -> dict[str, float]:
        return self.rows[-1] if self.rows else {}

    def to_csv(self) -> str:
        buf = io.StringIO()
        keys: list[str] = []
        for r in self.rows:
            keys += [k for k in r if k not in keys]
        w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
        w.writeheader()
        for r in self.rows:
            w.writerow({k: _fmt(r.get(k)) for k in keys})
        return buf.getvalue()

    def __repr__(self) -> str:
        return f"History({len(self)} epochs: {', '.join(self.keys())})"


def _fmt(v: Any) -> Any:
    return f"{v:.6g}" if isinstance(v, float) else v

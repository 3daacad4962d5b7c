"""Data-parallel training on 2 ranks under ``mpiexec``: equivalence with one process, the collectives' and
the sampler's semantics across processes, and a failing rank ending the job within seconds."""

from __future__ import annotations

import pytest

from tests.distributed.launch import mpirun, needs_mpi, rank_results

pytestmark = needs_mpi


def test_two_ranks_match_one_process_with_twice_the_batch():
    results = rank_results("equivalence.py")
    for rank, r in results.items():
        assert r["world"] == 2
        for opt in ("sgd", "adam"):
            for dtype, tol in (("float32", 1e-5), ("float64", 1e-12)):
                name = f"{opt}_{dtype}"
                assert r[f"{name}_same_init"], f"rank {rank}: {name}: the same seed gave other initial weights"
                assert r[f"{name}_moved"] > 0.1, f"{name}: training barely moved the weights"
                assert r[f"{name}_vs_reference"] < tol, f"rank {rank}: {name}: {r[f'{name}_vs_reference']:.3g}"
                assert r[f"{name}_ranks_identical"], f"rank {rank}: {name}: the ranks' weights differ"
            assert r[f"{opt}_float32_buckets"] == 1
            assert r[f"{opt}_float64_buckets"] == 3  # the small cap: still buckets, not one call per parameter
        assert r["unsynced_vs_reference"] > 1e-3  # the control: without sync_gradients the runs differ


def test_collectives_sampler_and_ddp_bookkeeping():
    results = rank_results("collectives.py")
    for rank, r in results.items():
        assert r["world"] == 2 and r["initialized"]
        failed = [name for name, ok in r["ok"].items() if not ok]
        assert not failed, f"rank {rank}: {failed}"
        assert len(r["ok"]) == 24
        assert r["collectives_per_sync"] == r["grad_buckets"] == 6  # one Allreduce per bucket
        assert r["default_grad_buckets"] == 1  # a small model fits one 25 MiB bucket


@pytest.mark.parametrize(("mode", "rank", "message"), [
    ("raise", "0", "rank 0 exited"),            # an uncaught exception on rank 0 (the one that writes files)
    ("exit", "1", "rank 1 exited"),             # sys.exit(3): MPI_Finalize alone would wait forever
    ("kill", "1", "signal 9"),                  # the process vanishes: mpiexec itself ends the job
])
def test_a_failing_rank_ends_the_job_within_seconds(mode, rank, message):
    run = mpirun("fault.py", mode, rank, timeout=60)
    assert run.returncode != 0, run.output
    assert run.seconds < 15, f"the job took {run.seconds:.1f} s to end:\n{run.output}"
    assert message in run.output, run.output
    assert "finished" not in run.output
    if mode == "raise":
        assert "RuntimeError: simulated failure on rank 0 at step 5" in run.output
    if mode != "kill":
        assert "can never complete; aborting the job" in run.output


def test_a_hung_rank_is_ended_by_the_collective_timeout():
    run = mpirun("fault.py", "hang", "0", "1", timeout=60)  # rank 0 sleeps 120 s; the timeout is 1 s
    assert run.returncode != 0, run.output
    assert run.seconds < 15, f"the job took {run.seconds:.1f} s to end:\n{run.output}"
    assert "rank 1 of 2: all_reduce (collective 8) waited more than 1 s" in run.output, run.output

"""A training step that fails on purpose, for the resume tests: the run stops as a crash would stop it."""


class CrashError(Exception):
    pass


def crash_at_step(task, n: int | None) -> None:
    """Make ``task.training_step`` raise ``CrashError`` on its ``n``-th call (None: never)."""
    if n is None:
        return
    real, calls = task.training_step, []

    def step(batch):
        calls.append(1)
        if len(calls) == n:
            raise CrashError
        return real(batch)

    task.training_step = step

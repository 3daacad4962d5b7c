"""``dlbasics tune --storage postgresql://...``: a study on a real PostgreSQL server, shared by worker processes
started together, and the clear one-line errors for a missing driver or a server that cannot be reached.

The server is a throw-away one on loopback (initdb + pg_ctl in a temporary folder), stopped after the module; the
tests that need it skip, saying what is missing, when it cannot be started. PostgreSQL refuses to run as root, so
under root (CI) it runs as the ``postgres`` system user."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

from dlbasics.errors import ConfigError, MissingDependencyError  # noqa: E402
from dlbasics.train import tuning  # noqa: E402

NO_DRIVER = "psycopg (the PostgreSQL driver) is not installed: pip install 'dlbasics[tune]'"
PASSWORD = "s3cret-pw"  # the server trusts loopback, so any password works; it must never be printed or saved


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_bin() -> Path | None:
    """The folder of initdb and pg_ctl: on PATH, else Debian's /usr/lib/postgresql/VERSION/bin (newest)."""
    on_path = shutil.which("pg_ctl")
    folders = [Path(on_path).resolve().parent] if on_path else []
    folders += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name) if
                      p.parent.name.isdigit() else 0, reverse=True)
    return next((f for f in folders if (f / "initdb").is_file() and (f / "pg_ctl").is_file()), None)


@pytest.fixture(scope="module")
def pg_url():
    """A URL ``postgresql://postgres:PASSWORD@127.0.0.1:PORT/dlbasics`` of an empty database on a fresh server."""
    psycopg = pytest.importorskip("psycopg", reason=NO_DRIVER)
    folder = _server_bin()
    if folder is None:
        pytest.skip("PostgreSQL's initdb and pg_ctl not found (Debian: apt-get install postgresql)")
    as_user: list[str] = []
    root = tempfile.mkdtemp(prefix="dlbasics-pg-")  # not under pytest's tmp: that is private to root
    if os.geteuid() == 0:  # the server refuses to run as root: run it as the postgres user, in a folder it owns
        runuser = shutil.which("runuser")
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            runuser = None
        if runuser is None:
            shutil.rmtree(root)
            pytest.skip("running as root, and there is no 'postgres' user (or no runuser) to run the server as")
        shutil.chown(root, "postgres")
        as_user = [runuser, "-u", "postgres", "--"]
    data, port = Path(root) / "data", _free_port()

    def run(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([*as_user, *argv], capture_output=True, text=True, timeout=60)

    init = run(str(folder / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync")
    # fsync off: a throw-away server, and trials commit often
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    start = init.returncode == 0 and run(str(folder / "pg_ctl"), "-D", str(data), "-o", options, "-l",
                                         f"{root}/server.log", "-w", "-t", "30", "start")
    if not start or start.returncode != 0:
        failed = init if init.returncode else start
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"could not start a PostgreSQL server: {(failed.stderr or failed.stdout).strip()[-300:]}")
    try:
        with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres", autocommit=True) as c:
            c.execute("CREATE DATABASE dlbasics")
        yield f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/dlbasics"
    finally:
        run(str(folder / "pg_ctl"), "-D", str(data), "stop", "-m", "immediate")
        shutil.rmtree(root, ignore_errors=True)


def _dlbasics(*argv: str) -> list[str]:
    return [sys.executable, "-m", "dlbasics", *argv]


def test_two_workers_started_together_share_one_study(pg_url, tmp_path):
    # A tiny run (moons, 8 hidden units, 1 epoch) so that each trial takes a fraction of a second. The study and
    # its tables do not exist yet: the workers create them together (the first-use lock keeps that race safe).
    # The same command on both, --seed included, as the README's recipe runs it on every machine.
    trials = {"a": 2, "b": 2}
    workers = {w: subprocess.Popen(_dlbasics(
        "tune", "--data", "moons", "--hidden", "8", "--epochs", "1", "--space", "lr=1e-3:1e-1:log",
        "--trials", str(n), "--seed", "0", "--storage", pg_url, "--study", "shared", "--no-prune",
        "--out", str(tmp_path / w), "--quiet"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for w, n in trials.items()}
    for w, proc in workers.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"worker {w}: {err}"
        assert PASSWORD not in out + err
    study = optuna.load_study(study_name="shared", storage=tuning.storage_url(pg_url))
    numbers = [t.number for t in study.trials]
    assert sorted(numbers) == list(range(sum(trials.values())))  # every trial once, none lost or doubled
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in study.trials)
    lrs = [t.params["lr"] for t in study.trials]
    assert len(set(lrs)) == len(lrs), f"workers with the same --seed proposed the same points: {lrs}"
    for w in trials:  # each worker wrote its own folder, and no password went into it
        files = {p.name: p.read_text(errors="replace") for p in (tmp_path / w).iterdir()}
        assert {"trials.csv", "best.json", "config.json", "model.safetensors"} <= set(files)
        assert not any(PASSWORD in text for text in files.values())
        assert "postgres:***@127.0.0.1" in files["config.json"]


def test_an_unreachable_server_is_one_line_naming_host_and_port(tmp_path, capsys):
    # in-process, as tests/test_errors.py runs the catalogue: a subprocess would only add Python's start-up
    from dlbasics.cli import main

    pytest.importorskip("psycopg", reason=NO_DRIVER)
    port = _free_port()  # nothing listens there
    start = time.monotonic()
    code = main(["tune", "--space", "lr=1e-3:1e-2:log", "--storage",
                 f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/dlbasics", "--out", str(tmp_path / "never"),
                 "--quiet"])
    assert time.monotonic() - start < 5  # connection refused at once (data and checks take a second)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("dlbasics: error: --storage "), err
    assert f"cannot connect to the server at 127.0.0.1:{port}" in err
    assert PASSWORD not in err and "postgres:***@" in err
    assert not (tmp_path / "never").exists()


def test_a_connection_that_hangs_gives_up_after_the_timeout(monkeypatch):
    # A listening socket that never answers: the client waits for the server's first message until the timeout.
    pytest.importorskip("psycopg", reason=NO_DRIVER)
    monkeypatch.setattr(tuning, "CONNECT_TIMEOUT", 2)  # libpq's minimum
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        start = time.monotonic()
        with pytest.raises(ConfigError, match=f"cannot connect to the server at 127.0.0.1:{port}"):
            tuning.open_storage(f"postgresql://postgres@127.0.0.1:{port}/dlbasics")
        assert time.monotonic() - start < 10


def test_a_missing_driver_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"PostgreSQL needs the driver psycopg: pip install "
                                                     r"'dlbasics\[tune\]'") as e:
        tuning.check_storage("postgresql://me:pw@dbhost/dlbasics")
    assert ":pw@" not in str(e.value)


@pytest.mark.parametrize(("given", "url"), [
    ("postgresql://me@dbhost/dlbasics", "postgresql+psycopg://me@dbhost/dlbasics"),
    ("postgres://me@dbhost:5433/db", "postgresql+psycopg://me@dbhost:5433/db"),
    ("postgresql+psycopg://me@dbhost/db", "postgresql+psycopg://me@dbhost/db"),
])
def test_a_bare_postgresql_url_is_driven_by_psycopg(given, url):
    # SQLAlchemy before 2.1 gives a bare postgresql:// to psycopg2, which dlbasics does not install
    assert tuning.storage_url(given) == url


@pytest.mark.parametrize("storage", ["mysql://me:pw@dbhost/db", "foo://bar"])
def test_other_databases_are_refused_listing_the_valid_ones(storage):
    with pytest.raises(ConfigError, match=r"is not one of sqlite, postgresql") as e:
        tuning.check_storage(storage)
    assert ":pw@" not in str(e.value)


def test_passwords_are_hidden():
    assert tuning.hide_password("postgresql://me:pw@dbhost:5432/db") == "postgresql://me:***@dbhost:5432/db"
    assert tuning.hide_password("postgresql://me@dbhost/db") == "postgresql://me@dbhost/db"
    with pytest.raises(ConfigError, match="not a database URL") as e:  # a refused URL does not echo it either
        tuning.check_storage("postgresql://me:pw@dbhost:notaport/db")
    assert "postgresql://me:***@dbhost:notaport/db" in str(e.value)


def test_workers_with_the_same_seed_on_two_machines_draw_different_points(pg_url, monkeypatch):
    # Two workers that start before either has recorded a trial both see an empty study; with the same --seed
    # (the README's recipe) their samplers would then propose the same first points. Each takes its own number.
    from dlbasics.train.tuning import Float

    seeds = []
    make = tuning.make_sampler
    monkeypatch.setattr(tuning, "make_sampler", lambda name, seed: seeds.append(seed) or make(name, seed))
    for machine in ("machine-a", "machine-b"):
        monkeypatch.setattr(socket, "gethostname", lambda machine=machine: machine)
        tuning.tune(lambda params, trial: params["x"], {"x": Float(0.0, 1.0)}, 1, seed=0, storage=pg_url,
                    study_name=f"empty-on-{machine}")  # an empty study each, as both saw it at their start
    assert len(seeds) == 2 and seeds[0] != seeds[1]

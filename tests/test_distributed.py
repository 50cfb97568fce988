"""Distributed runs need nothing of the user's machine: a real ``dask scheduler`` and
``dask worker`` (subprocesses, on 127.0.0.1) run a sweep whose scenario folder, Python
extension and flows the worker cannot open, list or even see exist."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import FLOWS, ROOT

RULES = Path(__file__).parent / "fixtures" / "capped_rules.py"

SCENARIO = """\
name: remote
network: {flows: flows, year: 2020}
pairs: [LFP-lithium, NCM-lithium]
stage_contributions: false
focal:
  China: [China]
  Australia: [Australia]
extensions: [rules.py]
sweep: {parameters.capped_arcs.share: [0.25, 0.5]}
"""

#: Networks built from statistics that each sample edits, in two variants.
SAMPLED = """\
name: sampled
network: {year: 2020}
pairs: [NCM-cobalt]
stage_contributions: false
focal: {China: [China]}
sweep:
  edits:
    - []
    - [{kind: move_production, from: China, to: [Korea, Japan], stage: cathode, share: 0.5}]
sensitivity: {samples: 6, seed: 3, parameters: [{material: cobalt, range: [0.8, 1.2]}]}
"""

#: Loaded into the worker process with ``dask worker --preload``: from then on, every path under
#: $HIDDEN fails to open or list (PermissionError, an audit hook) and to stat (it does not
#: exist), and every attempt is written to $HIDDEN_LOG, so that the test sees attempts that the
#: code caught and survived as well as failures.
GUARD = r'''
import os
import sys

HIDDEN = os.environ["HIDDEN"]
LOG = os.open(os.environ["HIDDEN_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
EVENTS = ("open", "os.", "glob.", "shutil.", "pathlib.")


def hidden(path):
    try:
        path = os.path.abspath(os.fsdecode(path))
    except (TypeError, ValueError):
        return False
    return path == HIDDEN or path.startswith(HIDDEN + os.sep)


def record(what, path):
    os.write(LOG, f"{what} {os.fsdecode(path)}\n".encode())


def audit(event, args):
    if event.startswith(EVENTS):
        for a in args:
            if isinstance(a, (str, bytes, os.PathLike)) and hidden(a):
                record(event, a)
                raise PermissionError(f"{event}: {os.fsdecode(a)} is hidden from this worker")


def no_such(real):
    def stat(path, *args, **kwargs):
        if not isinstance(path, int) and hidden(path):
            record(real.__name__, path)
            raise FileNotFoundError(2, "hidden from this worker", os.fsdecode(path))
        return real(path, *args, **kwargs)
    return stat


os.stat, os.lstat = no_such(os.stat), no_such(os.lstat)
sys.addaudithook(audit)
'''


def _stderr(procs) -> str:
    return "\n".join(f"{' '.join(map(str, p.args[1:4]))} (exit {p.poll()}):\n"
                     f"{Path(p.log).read_text(errors='replace')}" for p in procs)


def _wait_for(path: Path, procs, what: str) -> None:
    deadline = time.monotonic() + 300  # a safety net on a loaded machine, not a speed check
    while not path.exists():
        if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
            pytest.fail(f"{what} never started:\n{_stderr(procs)}")
        time.sleep(0.2)


def _start(args, cwd: Path, log: Path, env=None) -> subprocess.Popen:
    """``dask ARGS`` (``python -m dask``: the interpreter running the tests), its log in a
    file (a pipe nobody reads would fill up and stall it)."""
    with open(log, "wb") as err:
        p = subprocess.Popen([sys.executable, "-m", "dask", *args], cwd=cwd, env=env,
                             stdout=subprocess.DEVNULL, stderr=err)
    p.log = log
    return p


@pytest.fixture
def cluster(tmp_path):
    """``dask scheduler`` and ``dask worker`` (two single-threaded worker processes under a
    nanny) on 127.0.0.1, the worker started in a folder of its own with the guard above
    hiding ``tmp_path/user``: the folder of the user's scenario."""
    pytest.importorskip("dask.distributed")
    user, there, control = tmp_path / "user", tmp_path / "worker", tmp_path / "control"
    for d in (user, there, control):
        d.mkdir()
    (control / "guard.py").write_text(GUARD, encoding="utf-8")
    log = control / "hidden.log"
    log.touch()
    sched_file = control / "scheduler.json"
    env = {**os.environ, "HIDDEN": str(user.resolve()), "HIDDEN_LOG": str(log)}
    procs = []
    try:
        procs.append(_start(["scheduler", "--host", "127.0.0.1", "--port", "0",
                             "--no-dashboard", "--scheduler-file", str(sched_file)],
                            control, control / "scheduler.log"))
        _wait_for(sched_file, procs, "dask scheduler")
        procs.append(_start(["worker", "--scheduler-file", str(sched_file), "--host",
                             "127.0.0.1", "--nworkers", "2", "--nthreads", "1",
                             "--no-dashboard", "--local-directory", str(there),
                             "--preload", str(control / "guard.py")],
                            there, control / "worker.log", env))
        address = json.loads(sched_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        yield address, user, log, procs
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _joined(address, user, procs) -> None:
    """Wait for both workers, and probe them: the guard holds in the processes that run tasks."""
    from dask.distributed import Client

    with Client(address, timeout="60s") as client:
        try:
            client.wait_for_workers(2, timeout=300)
        except TimeoutError:
            pytest.fail(f"the dask workers never joined:\n{_stderr(procs)}")
        assert set(client.run(os.path.exists, str(user)).values()) == {False}
        with pytest.raises(PermissionError, match="hidden from this worker"):
            client.run(Path.read_bytes, user / "scenario.yaml")


def _run(user: Path, scenario: str, out: str, *how, procs=(), env=None) -> bytes:
    res = subprocess.run([sys.executable, "-m", "chokepoint.cli", "run", scenario, "--out", out,
                          "--quiet", "--no-progress", *how], cwd=user, capture_output=True,
                         text=True, timeout=900, env={**os.environ, **(env or {})})
    assert res.returncode == 0, f"{res.stderr}\n{_stderr(procs)}"
    return (user / out / "results.nc").read_bytes()


def test_a_worker_that_cannot_see_the_scenario_folder_runs_its_sweep(cluster):
    address, user, log, procs = cluster
    shutil.copy(RULES, user / "rules.py")
    shutil.copytree(FLOWS, user / "flows")
    (user / "scenario.yaml").write_text(SCENARIO, encoding="utf-8")
    _joined(address, user, procs)
    tried = log.read_text().splitlines()
    assert len(tried) == 4, tried  # each worker's two probes
    remote = _run(user, "scenario.yaml", "dask", "--dask", address, procs=procs)
    assert log.read_text().splitlines() == tried  # the run never tried to look into the folder
    assert remote == _run(user, "scenario.yaml", "pool", "--workers", "2")
    import xarray as xr

    ds = xr.open_dataset(user / "dask" / "results.nc", engine="h5netcdf")
    assert ds["parameters.capped_arcs.share"].values.tolist() == [0.25, 0.5]
    assert json.loads(ds.attrs["extensions"])[0]["extension"] == "rules.py"


def test_samples_on_a_worker_use_the_statistics_of_the_run_not_its_own(cluster):
    """CHOKEPOINT_DATA set for the run, in the hidden folder, with a contained fraction changed:
    the workers build each sample's networks from those statistics, not from the data they
    ship."""
    import xarray as xr

    address, user, log, procs = cluster
    shutil.copytree(ROOT / "data", user / "data")
    materials = user / "data" / "materials.yaml"
    text = materials.read_text(encoding="utf-8")
    fraction = '"282200": {fraction: 0.329}'  # cobalt oxides and hydroxides
    assert text.count(fraction) == 1
    materials.write_text(text.replace(fraction, fraction.replace("0.329", "0.7")),
                         encoding="utf-8")
    (user / "sampled.yaml").write_text(SAMPLED, encoding="utf-8")
    _joined(address, user, procs)
    tried = log.read_text().splitlines()
    own = {"CHOKEPOINT_DATA": str(user / "data")}
    remote = _run(user, "sampled.yaml", "dask", "--dask", address, procs=procs, env=own)
    assert log.read_text().splitlines() == tried
    assert remote == _run(user, "sampled.yaml", "pool", "--workers", "2", env=own)
    # and the changed figure matters: the shipped statistics give another index
    (user / "plain.yaml").write_text(SAMPLED.split("sweep:")[0], encoding="utf-8")
    _run(user, "plain.yaml", "shipped")
    key = dict(focal="China", chemistry="NCM", material="cobalt", case="proportional")
    ds = xr.open_dataset(user / "dask" / "results.nc", engine="h5netcdf")
    shipped = xr.open_dataset(user / "shipped" / "results.nc", engine="h5netcdf")
    assert float(ds.vi.sel(variant=0, sample=0, **key)) > float(shipped.vi.sel(**key)) + 0.01

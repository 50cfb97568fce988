"""Faults as a hostile user meets them, for real: signals sent to a running sweep, two runs on
one folder, changed inputs between an interrupt and its resume, a file system that fills up or
is another one, killed workers, bad YAML and bad values. Each test names the fault it injects;
the README's fault table lists them (re-run one with ``pytest tests/test_faults.py -k NAME``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest
import xarray as xr

from chokepoint.network import Network

from conftest import TINY_SCENARIO, write_scenario

# 300 samples (0-299) of the cobalt fractions: 6 tasks of 50 samples, a few seconds each
SENS = """\
name: sens
network: {year: 2020}
pairs: [NCM-cobalt]
stage_contributions: false
focal:
  China: [China]
  DR Congo: [DRC]
sensitivity:
  samples: 299
  seed: 11
  parameters:
    - {material: cobalt, range: [0.8, 1.2]}
"""


def cli(*args, cwd, env=None, timeout=900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chokepoint.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


class Run:
    """A ``chokepoint`` command in its own process, marked so that every process it starts can
    be found afterwards."""

    def __init__(self, *args, cwd, env=None):
        self.mark = uuid.uuid4().hex
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "chokepoint.cli", *map(str, args)], cwd=cwd,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **(env or {}), "CHOKEPOINT_TEST_MARK": self.mark})

    def wait_for(self, predicate, timeout=300.0) -> None:
        t = time.time()
        while not predicate():
            if self.proc.poll() is not None:
                raise AssertionError(f"the run ended first: {self.proc.stderr.read()}")
            if time.time() - t > timeout:
                raise AssertionError("timed out waiting")
            time.sleep(0.05)

    def stop(self, sig) -> tuple[int, float, str]:
        t = time.time()
        self.proc.send_signal(sig)
        _, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, time.time() - t, err

    def no_survivors(self, patience: float = 60.0) -> bool:
        """Every process the run started has ended. A killed child is reaped by the kernel a
        moment after its parent exits, later on a loaded machine: wait for that event (up to
        ``patience``, a guard against hanging, not a bound the test asserts) rather than a
        fixed sleep; a child that lives on fails."""
        t = time.monotonic()
        while self.survivors():
            if time.monotonic() - t > patience:
                return False
            time.sleep(0.1)
        return True

    def survivors(self) -> list[int]:
        """Processes still alive that this run started (they carry its mark)."""
        found = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            try:
                env = Path(f"/proc/{pid}/environ").read_bytes()
            except OSError:
                continue
            if f"CHOKEPOINT_TEST_MARK={self.mark}".encode() in env:
                found.append(int(pid))
        return found


def parts_dir(out: Path) -> Path:
    return out.parent / f".{out.name}.parts"


@pytest.fixture(scope="module")
def sens_reference(tmp_path_factory) -> bytes:
    """results.nc of the sensitivity sweep, run without interruption."""
    folder = tmp_path_factory.mktemp("reference")
    scen = write_scenario(folder, SENS)
    res = cli("run", scen, "--out", folder / "out", "--quiet", "--no-progress", "--workers", "2",
              cwd=folder)
    assert res.returncode == 0, res.stderr
    return (folder / "out" / "results.nc").read_bytes()


@pytest.mark.parametrize("sig, code, word", [(signal.SIGINT, 130, "interrupted"),
                                             (signal.SIGTERM, 143, "terminated")])
def test_signal_stops_a_sweep_at_once_and_resume_is_byte_identical(tmp_path, sens_reference,
                                                                   sig, code, word):
    scen = write_scenario(tmp_path, SENS)
    out = tmp_path / "out"
    start = time.monotonic()
    run = Run("run", scen, "--out", out, "--quiet", "--no-progress", "--workers", "2",
              cwd=tmp_path)
    run.wait_for(lambda: len(list(parts_dir(out).glob("*.json"))) >= 1)
    first_part = time.monotonic() - start  # starting workers and a task, under this load
    run.wait_for(lambda: len(list(parts_dir(out).glob("*.json"))) >= 2)
    rc, took, err = run.stop(sig)
    assert rc == code, err
    # "at once": quicker than the run took to save its first part under the same load (a run
    # that let its running tasks finish would take at least a task's time)
    assert took < first_part, f"{took:.1f} s to stop; {first_part:.1f} s to the first part"
    saved = len(list(parts_dir(out).glob("*.json")))
    assert f"chokepoint: {word}; {saved} of 6 tasks saved, re-run to resume" in err
    assert 2 <= saved < 6 and not out.exists()
    assert len(err.strip().splitlines()) == 1, err
    assert run.no_survivors(), "child processes outlived the run"
    # a part cut short (a crash while it was written elsewhere) is named and recomputed
    part = sorted(parts_dir(out).glob("*.json"))[0]
    part.write_bytes(part.read_bytes()[:100])
    res = cli("run", scen, "--out", out, "--no-progress", "--workers", "2", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert f"saved part {part.name} is cut short: discarded, computing it again" in res.stderr
    assert f"resuming: {saved - 1} of 6 tasks were saved by an earlier run" in res.stderr
    assert (out / "results.nc").read_bytes() == sens_reference
    assert not parts_dir(out).exists()


def test_second_run_on_the_same_folder_stops_at_once(tmp_path, sens_reference):
    scen = write_scenario(tmp_path, SENS)
    out = tmp_path / "out"
    first = Run("run", scen, "--out", out, "--quiet", "--no-progress", "--workers", "2",
                cwd=tmp_path)
    first.wait_for(lambda: len(list(parts_dir(out).glob("*.json"))) >= 1)
    second = cli("run", scen, "--out", out, "--quiet", "--workers", "1", cwd=tmp_path)
    # "at once" shown against events, not a clock: the second run has ended while the first
    # still runs and holds the folder (its results are not published yet)
    assert first.proc.poll() is None and not out.exists(), \
        "the first run had finished: the second did not stop at once"
    assert second.returncode == 1
    line = second.stderr.strip().splitlines()[-1]
    assert f"another chokepoint run is writing it (pid {first.proc.pid} on" in line, line
    assert first.proc.wait(timeout=300) == 0, first.proc.stderr.read()
    assert (out / "results.nc").read_bytes() == sens_reference


def chain_flows(folder: Path, countries: int, scale: float = 1.0) -> Path:
    from dataclasses import replace

    from chokepoint.bench.synthetic import synthetic_network

    folder.mkdir(parents=True, exist_ok=True)
    net = synthetic_network(countries, 7, seed=4)
    arcs = net.arcs.assign(tonnes=net.arcs["tonnes"] * scale)
    replace(Network.from_arcs(arcs), material="lithium").to_csv(folder / "lithium_2020.csv")
    return folder


CHAIN = """\
name: chain
network: {flows: flows, year: 2020}
pairs: [NCM-lithium]
focal:
  A: ["Country 000"]
  B: ["Country 001"]
sweep:
  stage_contributions: [true, false]
  solver: [highspy, network, appsi_highs]
"""


def test_changed_flows_between_interrupt_and_resume_are_not_mixed(tmp_path):
    chain_flows(tmp_path / "flows", 30)
    scen = write_scenario(tmp_path, CHAIN)
    out = tmp_path / "out"
    run = Run("run", scen, "--out", out, "--quiet", "--no-progress", "--workers", "1",
              cwd=tmp_path)
    run.wait_for(lambda: len(list(parts_dir(out).glob("*.json"))) >= 1)
    rc, _, err = run.stop(signal.SIGINT)
    assert rc == 130, err
    chain_flows(tmp_path / "flows", 31)  # the user corrects the flows, then resumes
    res = cli("run", scen, "--out", out, "--no-progress", "--workers", "1", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "the inputs changed since the interrupted run" in res.stderr
    fresh = cli("run", scen, "--out", tmp_path / "fresh", "--quiet", "--no-progress",
                "--workers", "1", cwd=tmp_path)
    assert fresh.returncode == 0, fresh.stderr
    assert (out / "results.nc").read_bytes() == (tmp_path / "fresh" / "results.nc").read_bytes()


def test_files_of_an_earlier_run_do_not_survive(tmp_path, tiny_flows):
    scen = write_scenario(tmp_path, TINY_SCENARIO)
    out = tmp_path / "out"
    assert cli("run", scen, "--out", out, "--quiet", cwd=tmp_path).returncode == 0
    assert (out / "stage_contributions.csv").is_file()
    japan = write_scenario(tmp_path, TINY_SCENARIO + "stage_contributions: false\n", "j.yaml")
    assert cli("run", japan, "--out", out, "--quiet", cwd=tmp_path).returncode == 0
    assert not (out / "stage_contributions.csv").exists()
    assert json.loads((out / "chokepoint-run.json").read_text())["scenario"] == "tiny"


def test_a_folder_of_the_users_own_is_never_replaced(tmp_path, tiny_flows):
    scen = write_scenario(tmp_path, TINY_SCENARIO)
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("precious")
    res = cli("run", scen, "--out", mine, "--quiet", cwd=tmp_path)
    assert res.returncode == 1
    assert "the folder exists and is not a chokepoint output" in res.stderr
    assert (mine / "chapter1.tex").read_text() == "precious"


def _mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True).returncode == 0


@pytest.fixture
def tmpfs(tmp_path):
    """A tmpfs of 4 MiB: another file system, and one that fills up."""
    where = tmp_path / "tmpfs"
    if not _mount_tmpfs(where, "4m"):
        pytest.skip("cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN); the other-file-"
                    "system and disk-full faults are not exercised")
    yield where
    subprocess.run(["umount", "-l", str(where)], capture_output=True)


def test_out_on_another_file_system_through_a_symlink_and_at_a_mount_point(tmp_path,
                                                                           tiny_flows, tmpfs):
    link = tmp_path / "link"
    link.symlink_to(tmpfs / "results")
    for out in (tmpfs, link / "tiny"):  # the mount point itself; through a symlink
        for body in (TINY_SCENARIO, TINY_SCENARIO + "stage_contributions: false\n"):
            path = write_scenario(tmp_path, body, "s.yaml")
            res = cli("run", path, "--out", out, "--quiet", cwd=tmp_path)
            assert res.returncode == 0, res.stderr
        assert (out / "results.nc").is_file() and not (out / "stage_contributions.csv").exists()
        assert not [p for p in tmpfs.rglob(".*") if "staging" in p.name or ".old-" in p.name]
        if out == tmpfs:
            for p in list(tmpfs.iterdir()):
                shutil.rmtree(p) if p.is_dir() else p.unlink()
            (tmpfs / "results").mkdir()


def test_disk_full_while_publishing_leaves_the_earlier_folder_byte_identical(tmp_path,
                                                                             tiny_flows, tmpfs):
    scen = write_scenario(tmp_path, TINY_SCENARIO)
    out = tmpfs / "out"
    assert cli("run", scen, "--out", out, "--quiet", cwd=tmp_path).returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    free = shutil.disk_usage(tmpfs).free
    (tmpfs / "filler").write_bytes(b"\0" * (free - 20_000))  # room for a few kB only
    res = cli("run", scen, "--out", out, "--quiet", cwd=tmp_path)
    assert res.returncode == 1
    line = res.stderr.strip().splitlines()[-1]
    assert "no space left on the device" in line and "Traceback" not in res.stderr, line
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not [p for p in tmpfs.iterdir() if p.name.startswith(".out.staging")]


def test_units_do_not_move_the_indices(tmp_path):
    base = chain_flows(tmp_path / "flows", 8)
    body = CHAIN.replace("sweep:\n  stage_contributions: [true, false]\n  solver: [highspy, "
                         "network, appsi_highs]\n", "")
    ref = None
    for scale in (1.0, 1e-12, 1e12):
        chain_flows(base, 8, scale)
        scen = write_scenario(tmp_path, body)
        res = cli("run", scen, "--out", tmp_path / f"out{scale}", "--quiet", cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        vi = pd.read_csv(tmp_path / f"out{scale}" / "vulnerability.csv")["vi"]
        ref = vi if ref is None else ref
        assert (vi - ref).abs().max() < 1e-9, scale


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        kids = (task / "children").read_text().split()
        out += [int(k) for k in kids]
    return out


def test_a_killed_worker_stops_the_run_with_its_parts_kept(tmp_path):
    scen = write_scenario(tmp_path, SENS)
    out = tmp_path / "out"
    run = Run("run", scen, "--out", out, "--quiet", "--no-progress", "--workers", "2",
              cwd=tmp_path)
    run.wait_for(lambda: len(list(parts_dir(out).glob("*.json"))) >= 1)
    workers = [p for p in _children(run.proc.pid)
               if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
    os.kill(workers[0], signal.SIGKILL)
    _, err = run.proc.communicate(timeout=60)
    assert run.proc.returncode == 1
    assert "a worker process died (killed, or out of memory?);" in err
    assert len(err.strip().splitlines()) == 1, err
    assert "tasks saved, re-run to resume" in err
    assert run.no_survivors(), "child processes outlived the run"
    assert len(list(parts_dir(out).glob("*.json"))) >= 1


def test_an_error_in_one_task_cancels_the_rest(tmp_path):
    body = SENS.replace("sensitivity:", """\
constraints:
  nothing_touched:
    title: Nothing touched becomes NCM
    cases: [pessimistic_a]
    foreach: arcs
    where: target == NCM
    equation: touched <= 0
families: {nothing_touched: false}
sweep: {families.nothing_touched: [false, true]}
sensitivity:""")
    scen = write_scenario(tmp_path, body)
    res = cli("run", scen, "--out", tmp_path / "out", "--quiet", "--workers", "2", cwd=tmp_path)
    assert res.returncode == 1
    line = res.stderr.strip().splitlines()[-1]
    assert "returned status Infeasible" in line and "tasks saved, re-run to resume" in line


def test_a_dask_scheduler_without_workers_fails_after_a_bounded_wait(tmp_path, tiny_flows):
    pytest.importorskip("dask.distributed")
    sched = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host",
                              "127.0.0.1", "--port", "0", "--no-dashboard"],
                             stderr=subprocess.PIPE, text=True)
    try:
        address = None
        t = time.time()
        while address is None and time.time() - t < 60:
            line = sched.stderr.readline()
            if "Scheduler at:" in line:
                address = line.split("Scheduler at:")[1].strip()
        assert address, "the scheduler did not start"
        scen = write_scenario(tmp_path, TINY_SCENARIO + "sweep: {stage_contributions: [true, "
                                                        "false]}\n")
        t = time.monotonic()
        res = cli("run", scen, "--out", tmp_path / "out", "--dask", address, "--quiet",
                  cwd=tmp_path, env={"CHOKEPOINT_DASK_WAIT": "3"}, timeout=300)
        assert time.monotonic() - t >= 3  # it waited as long as it was told, then gave up
        assert res.returncode == 1
        assert f"--dask {address}: no worker joined the scheduler in 3 s" in res.stderr
    finally:
        sched.terminate()
        sched.wait(timeout=30)


# -- bad YAML and bad values ----------------------------------------------------------------


def child_cpu(call):
    """CPU seconds the child processes of ``call`` used, and its result."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = call()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), out


def test_yaml_alias_bomb_is_refused_fast(tmp_path):
    levels = "".join(f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) +
                     "]\n" for i in range(8))
    path = tmp_path / "bomb.yaml"
    path.write_text("a: &a [x,x,x,x,x,x,x,x,x]\n" + levels)
    assert path.stat().st_size < 400
    small = tmp_path / "small.yaml"
    small.write_text("a: &a [x, x]\nb: [*a, *a]\n")
    # CPU time of the child, which load does not inflate as it does wall time, against a
    # validate of a small document of the same kind (imports and start-up dominate it); a
    # parser that expanded 9^9 values would take minutes
    bomb_cpu, res = child_cpu(lambda: cli("validate", path, cwd=tmp_path))
    small_cpu, _ = child_cpu(lambda: cli("validate", small, cwd=tmp_path))
    assert res.returncode == 1 and bomb_cpu < 3 * small_cpu, (bomb_cpu, small_cpu)
    assert "the document expands to more than 100,000 values" in res.stderr


@pytest.mark.parametrize("body, pattern", [
    (TINY_SCENARIO + "name: again\n", r"scenario.yaml:\d+: duplicate key 'name' \(first on line 1\)"),
    (TINY_SCENARIO.replace("China: [China]", "China: []"),
     r"focal.China: empty focal set: name at least one country"),
    (TINY_SCENARIO + "sweep: {solver: []}\n", r"sweep.solver is an empty list"),
])
def test_scenario_mistakes_are_found_by_validate(tmp_path, tiny_flows, body, pattern):
    import re

    res = cli("validate", write_scenario(tmp_path, body), cwd=tmp_path)
    assert res.returncode == 1, res.stdout
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(pattern, lines[0]), lines


DATA_SENS = """\
name: s
network: {year: 2020}
pairs: [NCM-lithium]
stage_contributions: false
focal: {China: [China]}
"""


@pytest.mark.parametrize("extra, pattern", [
    ("sensitivity: {samples: 40, method: grid, parameters: [{material: cobalt, range: "
     "[0.9, 1.1]}]}", r"sensitivity.samples: a grid of 40 points over 6 parameters is "
                      r"4,096,000,000 samples, more than the 100,000"),
    ("sensitivity: {samples: 4, seed: -1, parameters: [{material: cobalt, range: [0.9, 1.1]}]}",
     r"sensitivity.seed: Input should be greater than or equal to 0"),
    ("edits: [{kind: set_fraction, code: '260500', factor: 8}]",
     r"edits\[0\]: this pushes HS code 260500's contained fraction to 1.2, above 1 t per t"),
    ("sensitivity: {samples: 4, parameters: [{material: lithium, range: [0.9, 1.5]}]}",
     r"sensitivity.parameters\[0\].range: a factor of 1.5 pushes HS code 253090's contained "
     r"fraction 1 above 1 t per t"),
    ("sensitivity: {samples: 4, parameters: [{code: '282690', range: [0.9, 1.1]}]}",
     r"sensitivity.parameters\[0\].code: HS code 282690 has no contained fraction to vary"),
    ("edits: [{kind: set_fraction, code: '282690', factor: 1.1}]",
     r"edits\[0\]: HS code 282690 has no contained fraction to scale"),
    ("solver: gurobi", r"solver: solver 'gurobi' is not available on this machine"),
])
def test_values_that_cannot_run_are_found_by_validate(tmp_path, extra, pattern):
    import re

    res = cli("validate", write_scenario(tmp_path, DATA_SENS + extra + "\n"), cwd=tmp_path)
    assert res.returncode == 1, res.stdout
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(pattern, lines[0]), lines


def test_every_lithium_code_with_a_fraction_is_sampled_and_runs(tmp_path):
    """The documented `{material: X}` form samples the codes that have a contained fraction
    (lithium's 282690 has none) and runs."""
    body = DATA_SENS + "sensitivity: {samples: 3, parameters: [{material: lithium, range: " \
                       "[0.9, 1.0]}]}\n"
    res = cli("run", write_scenario(tmp_path, body), "--out", tmp_path / "out", "--quiet",
              "--workers", "1", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    ds = xr.open_dataset(tmp_path / "out" / "results.nc", engine="h5netcdf")
    assert "factor_code_282690" not in ds.coords and "factor_code_282520" in ds.coords


# -- the user's file system -------------------------------------------------------------------


@pytest.mark.parametrize("make, pattern", [
    (lambda p: (p / "out").write_text("x") and p / "out", r"out: .* is a file; choose another"),
    (lambda p: (p / "f").write_text("x") and p / "f" / "sub",
     r"sub: .*f is a file, so .* cannot be made"),
    (lambda p: p / ("x" * 300), r"file name too long"),
])
def test_output_paths_that_cannot_be_are_one_line_errors(tmp_path, tiny_flows, make, pattern):
    import re

    scen = write_scenario(tmp_path, TINY_SCENARIO)
    res = cli("run", scen, "--out", make(tmp_path), "--quiet", cwd=tmp_path)
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(pattern, lines[0]) and "internal" not in lines[0], lines


def test_read_only_file_system_is_a_one_line_error(tmp_path, tiny_flows):
    ro = tmp_path / "ro"
    ro.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)],
                      capture_output=True).returncode:
        pytest.skip("cannot mount a read-only tmpfs here (needs root or CAP_SYS_ADMIN)")
    try:
        scen = write_scenario(tmp_path, TINY_SCENARIO)
        res = cli("run", scen, "--out", ro / "out", "--quiet", cwd=tmp_path)
        assert res.returncode == 1
        line = res.stderr.strip().splitlines()[-1]
        assert "read-only file system" in line and "internal" not in line, line
    finally:
        subprocess.run(["umount", "-l", str(ro)], capture_output=True)


def test_truncated_trade_table_is_a_one_line_error(tmp_path):
    from chokepoint.statistics.inputs import TRADE_TABLE, data_dir

    data = tmp_path / "data"
    shutil.copytree(data_dir(), data)
    table = data / TRADE_TABLE
    table.write_bytes(table.read_bytes()[: table.stat().st_size // 2])
    res = cli("run", write_scenario(tmp_path, DATA_SENS), "--out", tmp_path / "out", "--quiet",
              cwd=tmp_path, env={"CHOKEPOINT_DATA": str(data)})
    assert res.returncode == 1
    line = res.stderr.strip().splitlines()[-1]
    assert TRADE_TABLE in line and "internal" not in line and "cut short" in line, line

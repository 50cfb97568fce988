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
    assert _leftovers(tmp_path) == [], "lock or staging files outlived the run"
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
    assert "the inputs changed since an earlier run stopped unfinished: its" in res.stderr
    fresh = cli("run", scen, "--out", tmp_path / "fresh", "--quiet", "--no-progress",
                "--workers", "1", cwd=tmp_path)
    assert fresh.returncode == 0, fresh.stderr
    assert (out / "results.nc").read_bytes() == (tmp_path / "fresh" / "results.nc").read_bytes()


TINY_SWEEP = TINY_SCENARIO + """\
sweep:
  stage_contributions: [true, false]
"""


def test_an_interrupt_while_results_are_written_keeps_every_part(tmp_path, tiny_flows):
    scen = write_scenario(tmp_path, TINY_SWEEP)
    out = tmp_path / "out"
    run = Run("report", scen, "--out", out, "--quiet", "--no-progress", "--workers", "1",
              cwd=tmp_path)
    # every task is done and the results are being written (the report is drawn last)
    run.wait_for(lambda: any(tmp_path.glob(".out.staging-*/results.nc")))
    rc, _, err = run.stop(signal.SIGINT)
    assert rc == 130, err
    assert err.strip() == ("chokepoint: interrupted; all 2 tasks saved but the results not "
                           "written: re-run to write them from the saved tasks"), err
    assert len(list(parts_dir(out).glob("*.json"))) == 2
    assert not out.exists() and not any(tmp_path.glob(".out.staging-*"))
    res = cli("report", scen, "--out", out, "--no-progress", "--workers", "1", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "resuming: 2 of 2 tasks were saved by an earlier run" in res.stderr
    assert (out / "report.html").is_file() and not parts_dir(out).exists()


FAILING = TINY_SWEEP + """\
constraints:
  nothing_touched:
    title: Nothing touched becomes LFP
    cases: [pessimistic_a]
    foreach: arcs
    where: target == LFP
    equation: touched <= 0
families: {nothing_touched: true}
"""


def test_a_failed_run_leaves_no_parts_and_no_note_for_the_next(tmp_path, tiny_flows):
    scen = write_scenario(tmp_path, FAILING)
    out = tmp_path / "out"
    res = cli("run", scen, "--out", out, "--quiet", "--workers", "1", cwd=tmp_path)
    assert res.returncode == 1
    assert "0 of 2 tasks saved" in res.stderr, res.stderr
    assert not parts_dir(out).exists() and not out.exists()
    # the user corrects the scenario and runs again: nothing to resume, nothing to note
    write_scenario(tmp_path, FAILING.replace("nothing_touched: true", "nothing_touched: false"))
    res = cli("run", scen, "--out", out, "--quiet", "--workers", "1", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "note:" not in res.stderr, res.stderr
    assert (out / "results.nc").is_file()


def test_files_of_an_earlier_run_do_not_survive(tmp_path, tiny_flows):
    scen = write_scenario(tmp_path, TINY_SCENARIO)
    out = tmp_path / "out"
    assert cli("run", scen, "--out", out, "--quiet", cwd=tmp_path).returncode == 0
    assert (out / "stage_contributions.csv").is_file()
    japan = write_scenario(tmp_path, TINY_SCENARIO + "stage_contributions: false\n", "j.yaml")
    assert cli("run", japan, "--out", out, "--quiet", cwd=tmp_path).returncode == 0
    assert not (out / "stage_contributions.csv").exists()
    assert json.loads((out / "chokepoint-run.json").read_text())["scenario"] == "tiny"


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(f.relative_to(folder)): f.read_bytes() for f in folder.rglob("*") if f.is_file()}


def _leftovers(folder: Path) -> list[str]:
    """Staging folders, lock files and parked folders of ours beside or in ``folder``."""
    return sorted(p.name for p in folder.iterdir()
                  if ".staging-" in p.name or ".old-" in p.name or p.name.endswith(
                      (".lock", ".lock.json")))


def _earlier_output(tmp_path: Path, name: str = "out") -> Path:
    scen = write_scenario(tmp_path, TINY_SCENARIO)
    res = cli("run", scen, "--out", tmp_path / name, "--quiet", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    return tmp_path / name


@pytest.mark.parametrize("make, named", [
    # a folder of the user's own, no results.nc in it
    (lambda t: (t / "thesis").mkdir() or (t / "thesis" / "chapter1.tex").write_text("1") and
     t / "thesis", "chapter1.tex"),
    # a thesis folder that happens to hold a results.nc: not ours without our marker
    (lambda t: (t / "thesis").mkdir() or (t / "thesis" / "results.nc").write_text("x") and
     (t / "thesis" / "ch1.tex").write_text("y") and t / "thesis", "ch1.tex, results.nc"),
    # an earlier output of ours into which the user put notes
    (lambda t: (_earlier_output(t) / "notes.md").write_text("mine") and t / "out", "notes.md"),
    # ... or a figure of their own into a subfolder
    (lambda t: (_earlier_output(t) / "drafts").mkdir() or
     (t / "out" / "drafts" / "fig.svg").write_text("<svg/>") and t / "out", "drafts/fig.svg"),
    # a marker of ours that does not list what the folder holds (a hand-copied marker)
    (lambda t: (t / "mine").mkdir() or (t / "mine" / "chokepoint-run.json").write_text(
        '{"files": ["results.nc"]}') and (t / "mine" / "data.csv").write_text("1") and
     t / "mine", "data.csv"),
])
def test_a_folder_with_files_of_the_users_own_is_refused_and_kept(tmp_path, tiny_flows, make,
                                                                  named):
    out = make(tmp_path)
    before = _snapshot(out)
    scen = write_scenario(tmp_path, TINY_SCENARIO + "stage_contributions: false\n", "s2.yaml")
    res = cli("run", scen, "--out", out, "--quiet", cwd=tmp_path)
    assert res.returncode == 1, res.stderr
    line = res.stderr.strip().splitlines()[-1]
    assert f"holds files chokepoint did not write ({named}); move them out" in line, line
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert _snapshot(out) == before
    assert _leftovers(tmp_path) == []


def test_an_output_of_an_earlier_version_without_a_file_list_is_replaced(tmp_path, tiny_flows):
    """A marker written before markers listed their files stands for the files chokepoint
    wrote then; those are replaced, anything else is the user's."""
    out = _earlier_output(tmp_path)
    marker = json.loads((out / "chokepoint-run.json").read_text())
    del marker["files"]
    (out / "chokepoint-run.json").write_text(json.dumps(marker))
    (out / "figures").mkdir()
    (out / "figures" / "vulnerability_bars.png").write_bytes(b"png")
    scen = write_scenario(tmp_path, TINY_SCENARIO + "stage_contributions: false\n", "s2.yaml")
    res = cli("run", scen, "--out", out, "--quiet", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert sorted(_snapshot(out)) == ["chokepoint-run.json", "results.nc", "vulnerability.csv"]
    assert _leftovers(tmp_path) == []


KILLED_PUBLISH = """\
import os, signal, sys
from chokepoint.publish import output_lock, staged
with output_lock(sys.argv[1]), staged(sys.argv[1], {}) as tmp:
    (tmp / "results.nc").write_text("half")
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_what_a_killed_run_leaves_is_cleared_by_the_next(tmp_path, tiny_flows):
    """kill -9 in the middle of a publish leaves its staging folder and the lock files; the
    next run on that --out removes them (it holds the lock, so no live run owns them), and a
    run that ends leaves no lock file."""
    out = _earlier_output(tmp_path)
    before = _snapshot(out)
    for _ in range(2):
        killed = subprocess.run([sys.executable, "-c", KILLED_PUBLISH, str(out)], cwd=tmp_path,
                                capture_output=True, text=True)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
    left = _leftovers(tmp_path)  # the second killed run cleared what the first left
    assert len([n for n in left if ".staging-" in n]) == 1 and ".out.lock" in left, left
    assert _snapshot(out) == before
    (tmp_path / ".outer.staging-x").mkdir()  # another output's: not touched
    res = cli("run", write_scenario(tmp_path, TINY_SCENARIO), "--out", out, "--quiet",
              cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert _leftovers(tmp_path) == [".outer.staging-x"]


def test_a_target_that_is_not_a_regular_file_or_folder_is_refused(tmp_path, tiny_flows):
    scen = write_scenario(tmp_path, TINY_SCENARIO)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    device = tmp_path / "full"
    device.symlink_to("/dev/full")  # a character device, reached through a link of ours
    lp = ["export-lp", scen, "--focal", "China", "--pair", "LFP-lithium", "--case",
          "optimistic", "--out"]
    for args, kind in [(["run", scen, "--quiet", "--out", fifo], "a FIFO (named pipe), not a "
                        "folder"),
                       ([*lp, fifo], "a FIFO (named pipe), not a regular file"),
                       ([*lp, device], "a character device, not a regular file"),
                       (["network", "--material", "lithium", "--out", fifo],
                        "a FIFO (named pipe), not a regular file")]:
        res = cli(*args, cwd=tmp_path)
        assert res.returncode == 1, res.stderr
        line = res.stderr.strip().splitlines()[-1]
        assert f": is {kind}; chokepoint never replaces one" in line, line
    import stat

    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and stat.S_ISCHR(os.stat(device).st_mode)
    assert device.is_symlink() and sorted(p.name for p in tmp_path.iterdir()) == [
        "flows", "full", "pipe", "scenario.yaml"]


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


def test_out_on_another_file_system_through_a_symlink(tmp_path, tiny_flows, tmpfs):
    link = tmp_path / "link"
    link.symlink_to(tmpfs / "results")
    out = link / "tiny"
    for body in (TINY_SCENARIO, TINY_SCENARIO + "stage_contributions: false\n"):
        path = write_scenario(tmp_path, body, "s.yaml")
        res = cli("run", path, "--out", out, "--quiet", cwd=tmp_path)
        assert res.returncode == 0, res.stderr
    assert (out / "results.nc").is_file() and not (out / "stage_contributions.csv").exists()
    assert _leftovers(tmpfs / "results") == [] and _leftovers(tmp_path) == []


def test_a_mount_point_or_bind_mount_as_out_is_refused_before_any_work(tmp_path, tiny_flows,
                                                                       tmpfs):
    """A mount point cannot be swapped in one step; publishing into it file by file would
    leave a mixed folder when it fails midway, so it is refused before solving."""
    scen = write_scenario(tmp_path, TINY_SCENARIO)
    bound, source = tmp_path / "bound", tmp_path / "source"
    source.mkdir()
    bound.mkdir()
    (source / "keep.txt").write_text("mine")
    if subprocess.run(["mount", "--bind", str(source), str(bound)],
                      capture_output=True).returncode:
        pytest.skip("cannot bind-mount here")
    try:
        for out in (tmpfs, bound):  # another file system; the same one, bound elsewhere
            before = _snapshot(out)
            res = cli("run", scen, "--out", out, "--quiet", cwd=tmp_path)
            assert res.returncode == 1, res.stderr
            line = res.stderr.strip().splitlines()[-1]
            assert f"{out}: is a mount point, which cannot be replaced in one step; give a " \
                   f"folder inside it (--out {out / 'results'})" in line, line
            assert _snapshot(out) == before and _leftovers(tmp_path) == []
        res = cli("run", scen, "--out", bound / "results", "--quiet", cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        assert (source / "results" / "results.nc").is_file()
        assert (source / "keep.txt").read_text() == "mine"
    finally:
        subprocess.run(["umount", "-l", str(bound)], capture_output=True)


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


RECYCLER = """\
name: s
network: {year: 2020}
pairs: [LFP-lithium]
stage_contributions: false
focal: {China: [China]}
edits: [{kind: recycling, owner: China, into: China, material: lithium, tonnes: TONNES}]
sweep: {solver: SOLVERS}
"""


def test_a_recycler_far_beyond_the_product_is_refused_by_the_lp_and_exact_with_network(
        tmp_path):
    """The audit's case: a recycler of 1e19 t made China's LFP-Li pessimistic A 100% with
    HiGHS (93.19% is right). Now the LP refuses naming the arcs; the network engine gives the
    index it gives at 1e12 t, where HiGHS agrees with it."""
    def run(tonnes, solvers):
        scen = write_scenario(tmp_path, RECYCLER.replace("TONNES", tonnes)
                              .replace("SOLVERS", solvers))
        out = tmp_path / f"out-{tonnes}-{solvers}"
        return cli("run", scen, "--out", out, "--quiet", "--workers", "1", cwd=tmp_path), out

    res, out = run("1e12", "[highspy, network]")
    assert res.returncode == 0, res.stderr
    small = pd.read_csv(out / "vulnerability.csv").pivot_table(index="case", columns="solver",
                                                                values="vi")
    assert (small["highspy"] - small["network"]).abs().max() < 1e-9
    assert small.loc["pessimistic_a", "network"] == pytest.approx(0.9319, abs=1e-4)
    res, out = run("1e19", "[highspy]")
    assert res.returncode == 1 and not out.exists()
    line = res.stderr.strip().splitlines()[-1]
    assert "China_ref_poss -> China_ref (1e+19 t)" in line and "more than 1e+09 times LFP's " \
        "supply" in line and "use solver: network" in line and "internal" not in line, line
    res, out = run("1e19", "[network]")  # one point: it runs as its variant, not the base
    assert res.returncode == 0, res.stderr
    big = pd.read_csv(out / "vulnerability.csv").set_index("case")["vi"]
    assert (big - small["network"]).abs().max() < 1e-9


def test_a_sweep_of_one_point_runs_with_its_value(tmp_path, tiny_flows):
    scen = write_scenario(tmp_path, TINY_SCENARIO + "sweep: {stage_contributions: [false]}\n")
    res = cli("run", scen, "--out", tmp_path / "out", "--quiet", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert not (tmp_path / "out" / "stage_contributions.csv").exists()


def _children(pid: int) -> list[int]:
    out = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:  # the process has ended
        return out
    for task in tasks:
        try:
            out += [int(k) for k in (task / "children").read_text().split()]
        except OSError:  # a thread that ended between listing and reading
            pass
    return out


# -- the network engine's forked workers (a network of a million arcs or more) ---------------


@pytest.fixture(scope="module")
def million_arcs(tmp_path_factory) -> Path:
    """A scenario over the seeded 450-economy, 7-stage chain: 1.09 million arcs, just past
    the size from which the network engine answers bound cases on forked workers."""
    from chokepoint.bench.suites import chain_flows, chain_scenario
    from chokepoint.lp.flow import PARALLEL_MIN_ARCS

    folder = tmp_path_factory.mktemp("million")
    flows = chain_flows(450, folder / "flows")
    assert Network.read_csv(flows).arcs.shape[0] >= PARALLEL_MIN_ARCS
    return chain_scenario(flows, folder)


def _forks(pid: int) -> list[int]:
    """Children of ``pid`` that are forks of it (the same command line)."""
    return [k for k in _children(pid) if _cmdline(k) == _cmdline(pid)]


def test_forked_workers_answer_the_bound_cases_as_one_process_does(million_arcs, tmp_path):
    run = Run("run", million_arcs, "--set", "solver=network", "--out", tmp_path / "two",
              "--quiet", "--workers", "2", cwd=tmp_path)
    run.wait_for(lambda: len(_forks(run.proc.pid)) == 2)
    _, err = run.proc.communicate(timeout=600)
    assert run.proc.returncode == 0, err
    one = cli("run", million_arcs, "--set", "solver=network", "--out", tmp_path / "one",
              "--quiet", "--workers", "1", cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    a, b = (pd.read_csv(tmp_path / d / "vulnerability.csv") for d in ("two", "one"))
    assert len(a) == 8 and a.equals(b)  # bit for bit: the same max flows, elsewhere


@pytest.mark.parametrize("fault", ["worker_killed", "ctrl_c"])
def test_a_fault_among_forked_workers_ends_the_run_in_one_line(million_arcs, tmp_path, fault):
    """A forked worker killed (SIGKILL) mid-question, or Ctrl-C to the whole process group:
    one line, nothing written, no process of the run left."""
    out = tmp_path / "out"
    run = Run("run", million_arcs, "--set", "solver=network", "--out", out, "--quiet",
              "--workers", "2", cwd=tmp_path)
    while len(workers := _forks(run.proc.pid)) < 2:  # a question takes 0.2 s: look often
        assert run.proc.poll() is None, run.proc.stderr.read()
        time.sleep(0.005)
    if fault == "worker_killed":
        for pid in workers:  # both held mid-question, so the kill lands before any answer
            os.kill(pid, signal.SIGSTOP)
        os.kill(workers[0], signal.SIGKILL)
        os.kill(workers[1], signal.SIGCONT)
    else:  # what a terminal's Ctrl-C does: SIGINT to every process of the foreground group
        for pid in [run.proc.pid, *_forks(run.proc.pid)]:
            os.kill(pid, signal.SIGINT)
    _, err = run.proc.communicate(timeout=120)
    if fault == "worker_killed":
        assert run.proc.returncode == 1, err
        assert "the network engine: a worker process died (killed, or out of memory?" in err
    else:
        assert run.proc.returncode == 130, err
        assert "interrupted; nothing written" in err
    assert len(err.strip().splitlines()) == 1, err
    assert run.no_survivors(), "child processes outlived the run"
    assert not out.exists()


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


@pytest.mark.parametrize("when", ["workers_starting", "parts_saved"])
def test_kill_9_of_the_run_leaves_no_process_alive_5_s_later(tmp_path, when):
    """kill -9 of a pooled sweep's main process left its workers (and multiprocessing's
    resource tracker) computing for minutes. Killed while its workers are still importing, or
    while they compute, nothing of the run is alive 5 s later."""
    scen = write_scenario(tmp_path, SENS)
    out = tmp_path / "out"
    run = Run("run", scen, "--out", out, "--quiet", "--no-progress", "--workers", "2",
              cwd=tmp_path)
    if when == "workers_starting":
        run.wait_for(lambda: any(b"spawn_main" in _cmdline(p) for p in _children(run.proc.pid)))
    else:
        run.wait_for(lambda: len(list(parts_dir(out).glob("*.json"))) >= 1)
    assert len(run.survivors()) >= 3  # the run, its workers, the resource tracker
    run.proc.kill()
    run.proc.wait(timeout=60)
    deadline = time.time() + 5
    while run.survivors() and time.time() < deadline:
        time.sleep(0.1)
    assert run.survivors() == [], "processes of the run outlived it by 5 s"


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


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


def _scheduler() -> tuple[subprocess.Popen, str]:
    """A Dask scheduler of its own, on a free port, and its address."""
    sched = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host",
                              "127.0.0.1", "--port", "0", "--no-dashboard"],
                             stderr=subprocess.PIPE, text=True)
    address = None
    t = time.time()
    while address is None and time.time() - t < 120:
        line = sched.stderr.readline()
        if "Scheduler at:" in line:
            address = line.split("Scheduler at:")[1].strip()
    assert address, "the scheduler did not start"
    return sched, address


def test_a_dask_scheduler_without_workers_fails_after_a_bounded_wait(tmp_path, tiny_flows):
    pytest.importorskip("dask.distributed")
    sched, address = _scheduler()
    try:
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


def test_a_run_whose_dask_workers_all_die_stops_naming_its_saved_parts(tmp_path):
    """Every Dask worker killed mid-run: the run waited forever. Now it stops
    CHOKEPOINT_DASK_WAIT seconds after the last one went, saying what was saved."""
    pytest.importorskip("dask.distributed")
    sched, address = _scheduler()
    worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address,
                               "--no-nanny", "--nthreads", "1", "--no-dashboard"],
                              stderr=subprocess.DEVNULL)
    try:
        scen = write_scenario(tmp_path, SENS)
        out = tmp_path / "out"
        run = Run("run", scen, "--out", out, "--quiet", "--no-progress", "--dask", address,
                  cwd=tmp_path, env={"CHOKEPOINT_DASK_WAIT": "3"})
        run.wait_for(lambda: len(list(parts_dir(out).glob("*.json"))) >= 1, timeout=600)
        worker.kill()
        worker.wait(timeout=30)
        # the event: the run ends by itself once its workers are gone (before, it waited for
        # ever); the timeout only keeps a regression from hanging the suite
        _, err = run.proc.communicate(timeout=600)
        assert run.proc.returncode == 1, err
        lines = err.strip().splitlines()
        saved = len(list(parts_dir(out).glob("*.json")))
        assert len(lines) == 1 and f"--dask {address}: " in lines[0], err
        assert f"; {saved} of 6 tasks saved, re-run to resume" in lines[0], lines
        assert ("every worker is gone" in lines[0] or "workers running a task died" in lines[0]
                or "workers holding the run's inputs died" in lines[0]), lines
        assert saved >= 1 and not out.exists()
    finally:
        worker.kill()
        sched.terminate()
        sched.wait(timeout=30)


def test_sigterm_under_dask_local_says_what_was_saved(tmp_path):
    pytest.importorskip("dask.distributed")
    scen = write_scenario(tmp_path, SENS)
    out = tmp_path / "out"
    run = Run("run", scen, "--out", out, "--quiet", "--no-progress", "--dask", "local",
              cwd=tmp_path)
    run.wait_for(lambda: len(list(parts_dir(out).glob("*.json"))) >= 1, timeout=600)
    rc, _, err = run.stop(signal.SIGTERM)
    assert rc == 143, err
    saved = len(list(parts_dir(out).glob("*.json")))
    lines = err.strip().splitlines()
    assert lines == [f"chokepoint: terminated; {saved} of 6 tasks saved, re-run to resume"], err
    deadline = time.time() + 10
    while run.survivors() and time.time() < deadline:
        time.sleep(0.2)
    assert run.survivors() == []


@pytest.mark.parametrize("address, pattern", [
    ("foo://x:1", r"--dask foo://x:1: unknown address scheme 'foo'; give 'local', host:port"),
    ("tpc://127.0.0.1:1", r"unknown address scheme 'tpc' \(did you mean 'tcp'\?\)"),
    ("tcp://", r"--dask tcp://: no host:port after tcp://"),
])
def test_a_dask_address_of_an_unknown_scheme_is_one_line(tmp_path, tiny_flows, address,
                                                         pattern):
    import re

    pytest.importorskip("dask.distributed")
    scen = write_scenario(tmp_path, TINY_SCENARIO + "sweep: {stage_contributions: [true, "
                                                    "false]}\n")
    res = cli("run", scen, "--out", tmp_path / "out", "--dask", address, "--quiet",
              cwd=tmp_path, timeout=120)
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(pattern, lines[0]) and "internal" not in lines[0], lines


@pytest.mark.parametrize("name, body, pattern", [
    ("notes.txt", "some notes\n", r"extensions\[0\]: notes.txt: an extension is a Python file "
                                  r"ending in .py"),
    ("picture.py", b"\x89PNG\r\n\x1a\n\x00\x00binary",
     r"extensions\[0\]: picture.py: not Python source \(source code string cannot contain "
     r"null bytes\)"),
    ("quits.py", "import sys\nsys.exit(3)\n",
     r"extensions\[0\]: quits.py: called sys.exit\(3\) while being loaded"),
    ("quits_later.py", """\
import sys
import chokepoint


@chokepoint.constraint_family(title="Quits", cases=["pessimistic_a"])
def quits(m):
    \"\"\"touched <= 0
    Ends the run instead of returning a constraint.\"\"\"
    sys.exit(0)
""", r"constraint family quits \(quits_later.py#sha256=\w+\) called sys.exit\(0\) while "
     r"building; a rule returns a Constraint"),
])
def test_an_extension_that_is_not_python_or_ends_the_run_is_one_line(tmp_path, tiny_flows,
                                                                     name, body, pattern):
    """An extension that is no Python file, or calls sys.exit (which ended the run with exit
    3 and no message), is one line naming it."""
    import re

    path = tmp_path / name
    path.write_bytes(body if isinstance(body, bytes) else body.encode())
    scen = write_scenario(tmp_path, TINY_SCENARIO + f"extensions: [{name}]\n")
    res = cli("run", scen, "--out", tmp_path / "out", "--quiet", cwd=tmp_path)
    assert res.returncode == 1, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(pattern, lines[0]) and "internal" not in lines[0], lines
    assert not (tmp_path / "out").exists()


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


@pytest.mark.parametrize("extra, pattern", [
    ("edits: [{kind: scale_trade, exporter: Australia, importer: China, factor: .inf}]",
     r"scenario.yaml:6: edits\[0\].factor: Input should be a finite number"),
    ("edits: [{kind: recycling, owner: China, material: lithium, tonnes: .nan}]",
     r"scenario.yaml:6: edits\[0\].tonnes: Input should be a finite number"),
    ("sweep: {network.year: [2020, .nan]}",
     r"sweep: variant \{'network.year': nan\}: network.year: Input should be a finite number"),
    ("sweep: {edits: [[], [{kind: recycling, owner: China, material: lithium, tonnes: .inf}]]}",
     r"sweep: variant .*: edits.0.recycling.tonnes: Input should be a finite number"),
    ("sensitivity: {samples: 3, parameters: [{material: lithium, range: [0.9, .inf]}]}",
     r"sensitivity.parameters\[0\].range\[1\]: Input should be a finite number"),
    ("sensitivity: {samples: 3, quantiles: [0.5, 2], parameters: [{material: lithium, "
     "range: [0.9, 1]}]}", r"sensitivity.quantiles\[1\]: Input should be less than or equal "
                           r"to 1"),
])
def test_a_number_that_is_not_finite_or_in_range_is_refused_by_validate_and_run(
        tmp_path, extra, pattern):
    """validate and run refuse the same values, naming the key, without an internal error."""
    import re

    scen = write_scenario(tmp_path, DATA_SENS + extra + "\n")
    for args in (["validate", scen], ["run", scen, "--out", tmp_path / "out", "--quiet"]):
        res = cli(*args, cwd=tmp_path)
        assert res.returncode == 1, res.stdout
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and re.search(pattern, lines[0]), lines
        assert "internal" not in lines[0] and not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, env, pattern", [
    (["run", "{scen}", "--quiet", "--out", "o"], {}, None),  # solver_options below
    (["run", "{sweep}", "--quiet", "--out", "o", "--dask", "tcp://127.0.0.1:9"],
     {"CHOKEPOINT_DASK_WAIT": "nan"},
     r"CHOKEPOINT_DASK_WAIT: expected a positive number of seconds, got 'nan'"),
    (["run", "{sweep}", "--quiet", "--out", "o", "--dask", "tcp://127.0.0.1:9"],
     {"CHOKEPOINT_DASK_WAIT": "soon"},
     r"CHOKEPOINT_DASK_WAIT: expected a positive number of seconds, got 'soon'"),
    (["rank", "--top", "-3", "--out", "o"], {}, r"argument --top: -3 is below 1"),
    (["narrow", "{scen}", "--focal", "China", "--pair", "LFP-lithium", "--top", "0"], {},
     r"argument --top: 0 is below 1"),
])
def test_an_option_that_is_not_a_number_in_range_is_one_line(tmp_path, tiny_flows, args, env,
                                                             pattern):
    import re

    scen = write_scenario(tmp_path, TINY_SCENARIO + "solver_options: {time_limit: .nan}\n")
    sweep = write_scenario(tmp_path, TINY_SCENARIO + "sweep: {stage_contributions: [true, "
                                                     "false]}\n", "sweep.yaml")
    pattern = pattern or r"scenario.yaml:\d+: solver_options: time_limit is nan, not a finite"
    args = [a.format(scen=scen, sweep=sweep) for a in args]
    res = cli(*args, cwd=tmp_path, env=env, timeout=600)
    # the order of events shows it is refused before any work: a connection tried first would
    # fail as "cannot reach the scheduler", a network built first would leave "o" behind
    assert "cannot reach the scheduler" not in res.stderr, res.stderr
    assert res.returncode in (1, 2), res.stderr
    line = res.stderr.strip().splitlines()[-1]
    assert re.search(pattern, line) and "internal" not in res.stderr, res.stderr
    assert not (tmp_path / "o").exists()


def test_scale_trade_by_a_fractional_factor_runs_on_the_shipped_table(tmp_path):
    """The shipped trade table holds whole tonnes; factors 0.5 and 1.5 run, and a factor of
    1 gives the unedited indices."""
    out = {}
    for factor in (None, 1, 0.5, 1.5):
        edit = "" if factor is None else (
            f"edits: [{{kind: scale_trade, exporter: Australia, importer: China, "
            f"material: lithium, factor: {factor}}}]\n")
        scen = write_scenario(tmp_path, DATA_SENS.replace("China: [China]", "Australia: "
                                                          "[Australia]") + edit)
        res = cli("run", scen, "--out", tmp_path / f"out{factor}", "--quiet", cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        out[factor] = pd.read_csv(tmp_path / f"out{factor}" / "vulnerability.csv").set_index(
            "case")["vi"]
    assert (out[1] - out[None]).abs().max() < 1e-12
    # less of Australia's ore reaches China's refineries: its proportional share falls
    p = "proportional"
    assert out[0.5][p] < out[None][p] - 1e-3 and out[1.5][p] > out[None][p] + 1e-3
    assert all(((v >= 0) & (v <= 1)).all() for v in out.values())


def test_a_flows_file_with_a_header_and_no_rows_is_a_one_line_error(tmp_path, tiny_flows):
    (tiny_flows / "lithium_2020.csv").write_text("Source,Target,Value\n")
    res = cli("run", write_scenario(tmp_path, TINY_SCENARIO), "--out", tmp_path / "out",
              "--quiet", cwd=tmp_path)
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "lithium_2020.csv: has a header and no rows" in lines[0], lines


@pytest.mark.parametrize("setup, args, pattern", [
    (lambda t: None, ["validate", "/dev/zero"],
     r"/dev/zero: is a character device, not a regular file; give the scenario file itself"),
    (lambda t: os.mkfifo(t / "pipe.yaml"), ["validate", "pipe.yaml"],  # no writer: open blocks
     r"pipe.yaml: is a FIFO \(named pipe\), not a regular file"),
    (lambda t: os.truncate((t / "huge.yaml").open("wb").name, 20 << 30),  # sparse, 20 GB
     ["validate", "huge.yaml"], r"huge.yaml: more than the 10,000,000 bytes a scenario file"),
    (lambda t: write_scenario(t, TINY_SCENARIO + "extensions: [/dev/zero]\n"),
     ["validate", "scenario.yaml"], r"scenario.yaml:\d+: extensions\[0\]: /dev/zero: is a "
                                    r"character device, not a regular file"),
    (lambda t: write_scenario(t, TINY_SCENARIO + "blocs_file: /dev/zero\n"),
     ["validate", "scenario.yaml"], r"scenario.yaml:\d+: blocs_file: /dev/zero: is a "
                                    r"character device"),
    (lambda t: os.mkfifo(t / "blocs.yaml"), ["rank", "--blocs", "blocs.yaml", "--out", "o"],
     r"blocs.yaml: is a FIFO \(named pipe\), not a regular file; give the blocs file itself"),
    (lambda t: (t / "flows" / "lithium_2020.csv").unlink() or
     os.mkfifo(t / "flows" / "lithium_2020.csv") or write_scenario(t, TINY_SCENARIO),
     ["run", "scenario.yaml", "--out", "o"], r"lithium_2020.csv: is a FIFO"),
])
def test_a_file_the_user_names_is_a_regular_file_read_with_a_bound(tmp_path, tiny_flows,
                                                                    setup, args, pattern):
    """/dev/zero was read whole before the 10 MB check (10 GB after 30 s, signals ignored),
    a FIFO without a writer blocked: now each is refused before a byte is read."""
    import re

    setup(tmp_path)
    res = cli(*args, cwd=tmp_path, timeout=120)
    assert res.returncode == 1, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(pattern, lines[0]) and "internal" not in lines[0], \
        lines
    assert not (tmp_path / "o").exists()


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


# -- single-file outputs: replaced only when chokepoint can tell it wrote them ----------------


@pytest.mark.parametrize("command", [
    ["export-lp", "paper_2020", "--focal", "China", "--pair", "LFP-lithium", "--case",
     "pessimistic_a", "--out", "{out}"],
    ["network", "--material", "lithium", "--out", "{out}"],
])
def test_a_users_file_at_a_single_file_out_is_never_overwritten(tmp_path, command):
    suffix = ".mps" if command[0] == "export-lp" else ".csv"
    out = tmp_path / f"mine{suffix}"
    out.write_text("Source,Target,Value\nmy,own,1\n" if suffix == ".csv" else "my notes\n")
    before = out.read_bytes()
    r = cli(*[c.format(out=out) for c in command], cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    assert "exists and chokepoint cannot tell it wrote it" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and out.read_bytes() == before
    fresh = tmp_path / f"fresh{suffix}"
    r = cli(*[c.format(out=fresh) for c in command], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    again = cli(*[c.format(out=fresh) for c in command], cwd=tmp_path)
    if command[0] == "export-lp":  # its own file says so in its first line: replaced
        assert again.returncode == 0, again.stderr
    else:  # a flows file carries no mark of who wrote it: never replaced
        assert again.returncode == 1 and "cannot tell it wrote it" in again.stderr

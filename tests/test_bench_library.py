"""The instance library (export-lp --all), benchmarks on its files (bench --instances) and the
field's summaries (bench --report): shifted geometric means and performance profiles.

The whole paper library (200 LPs) is solved by highspy, glpsol and cbc, twice: about 10 s on
the project's 2-core machine (measured: 0.4 s, 1.0 s and 2.2 s per solver and repeat, plus
5 s to write the library), so no subset is needed."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from chokepoint.bench.report import profile, shifted_geometric_mean, summary, times

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]
#: Each runs where installed (.ci/run installs glpk-utils and coinor-cbc).
SOLVERS = ["highspy"] + [s for s, program in (("glpk", "glpsol"), ("cbc", "cbc"))
                         if shutil.which(program)]


def cli(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chokepoint.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=900)


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    folder = tmp_path_factory.mktemp("library") / "paper"
    r = cli("export-lp", "paper_2020", "--all", "--out", folder)
    assert r.returncode == 0, r.stderr
    return folder


@pytest.fixture(scope="module")
def measured(library, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    r = cli("bench", "--instances", library, "--solvers", *SOLVERS, "--repeat", "2",
            "--out", out)
    assert r.returncode == 0, r.stderr
    return out, r


def test_export_all_writes_the_paper_grids_200_lps_with_a_manifest(library):
    from chokepoint.api import run

    m = pd.read_csv(library / "manifest.csv")
    assert len(m) == 200 and m["instance"].is_unique and m["file"].is_unique
    assert set(m["case"]) == {"proportional", "optimistic", "pessimistic_a", "pessimistic_b"}
    assert m.groupby(["focal", "pair"]).size().eq(4).all() and m["focal"].nunique() == 10
    assert (m[["rows", "columns", "nonzeros"]] > 0).all().all()
    # the index is the run's, and the manifest's rule turns the objective into it
    vi = run("paper_2020", write_files=False).dataset["vi"]
    for r in m.itertuples():
        chem, mat = r.pair.split("-")
        assert r.index == pytest.approx(float(vi.sel(focal=r.focal, chemistry=chem,
                                                     material=mat, case=r.case)), abs=1e-12)
        sign = -1 if r.sense == "maximize" else 1
        assert sign * r.objective / r.product_supply_t == pytest.approx(r.index, abs=1e-12)
    text = gzip.decompress((library / m["file"].iloc[2]).read_bytes()).decode()
    assert text.startswith("* chokepoint: China__LFP-lithium__pessimistic_a\n")
    assert "index = -objective / supply" in text and "OBJSENSE" not in text


def test_bench_instances_solves_every_file_to_the_manifests_objective(library, measured):
    out, r = measured
    manifest = pd.read_csv(library / "manifest.csv").set_index("instance")
    ms = pd.read_csv(out / "measurements.csv")
    # one row per instance x solver x repeat
    assert len(ms) == 200 * len(SOLVERS) * 2
    assert ms.groupby(["solver", "repeat"]).size().eq(200).all()
    assert (ms["status"] == "ok").all(), ms.loc[ms["status"] != "ok", ["instance", "status"]]
    want = manifest.loc[ms["instance"], "objective"].to_numpy()
    assert np.all(np.abs(ms["objective"] - want) <= 1e-6 * np.maximum(np.abs(want), 1.0))
    assert np.allclose(ms["index"], manifest.loc[ms["instance"], "index"], atol=1e-6)
    engines = ms.groupby("solver")["engine"].agg(set)
    assert engines["highspy"] == {"highspy (HiGHS reads the file)"}
    for solver, program in (("glpk", "glpsol"), ("cbc", "cbc")):
        if solver in SOLVERS:
            assert engines[solver] == {f"{program} (program)"}
            assert ms.loc[ms["solver"] == solver, "iterations"].notna().all()
    table = pd.read_csv(out / "bench.csv")
    assert list(table["solver"]) == SOLVERS and (table["status"] == "ok").all()
    for row in table.itertuples():  # the summary is computed from the measurements
        mine = ms.loc[ms["solver"] == row.solver, "seconds"] * 1000
        assert row.solve_median_ms == pytest.approx(mine.median(), rel=1e-12)
    versions = json.loads(pd.read_csv(out / "runs.csv")["solver_versions"].iloc[0])
    assert all(versions.get(s) for s in SOLVERS), versions


def test_a_wrong_objective_in_the_manifest_is_found(library, tmp_path):
    """The check is real: a manifest whose optimum is off by 1e-5 (relative) fails the run."""
    shutil.copytree(library, tmp_path / "lib")
    m = pd.read_csv(tmp_path / "lib" / "manifest.csv")
    m = m.iloc[:3].copy()
    m.loc[2, "objective"] *= 1 + 1e-5
    m.to_csv(tmp_path / "lib" / "manifest.csv", index=False, float_format="%.17g")
    r = cli("bench", "--instances", tmp_path / "lib", "--solvers", "highspy", "--repeat", "1",
            "--out", tmp_path / "out")
    assert r.returncode == 1, r.stderr
    ms = pd.read_csv(tmp_path / "out" / "measurements.csv")
    assert list(ms["status"].str.startswith("WRONG objective")) == [False, False, True]
    assert "WRONG: 1 of 3 solves" in r.stdout


@pytest.mark.parametrize("args, message", [
    (["bench", "--instances", "{tmp}"], "no manifest.csv there"),
    (["bench", "--report", "{tmp}"], "no measurements.csv there"),
    (["bench", "--report", "{tmp}", "--shift", "nan"], "--shift: expected a finite number"),
    (["export-lp", "paper_2020", "--all", "--focal", "China", "--out", "{tmp}/x"],
     "--focal is for one index"),
    (["export-lp", "paper_2020", "--out", "{tmp}/x.mps"], "--focal, --pair, --case needed"),
])
def test_bad_arguments_are_one_line_errors(tmp_path, args, message):
    r = cli(*[a.replace("{tmp}", str(tmp_path)) for a in args], cwd=tmp_path)
    assert r.returncode == 1 and message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_a_manifest_naming_a_missing_file_is_refused_before_solving(library, tmp_path):
    shutil.copytree(library, tmp_path / "lib")
    (tmp_path / "lib" / "instances" / "Japan__NCM-nickel__optimistic.mps.gz").unlink()
    r = cli("bench", "--instances", tmp_path / "lib", "--solvers", "highspy", "--out",
            tmp_path / "out")
    assert r.returncode == 1 and "instance Japan__NCM-nickel__optimistic: file" in r.stderr
    assert "manifest.csv, line " in r.stderr and not (tmp_path / "out").exists()


def test_shifted_geometric_mean_and_performance_profile_by_hand():
    # exp(mean(log(t + s))) - s: times 1, 4, 16 ms with no shift give 4 ms
    assert shifted_geometric_mean(np.array([0.001, 0.004, 0.016]), 0.0) == pytest.approx(4.0)
    # with a 10 ms shift: (11 * 14 * 26)^(1/3) - 10
    assert shifted_geometric_mean(np.array([0.001, 0.004, 0.016]), 10.0) == \
        pytest.approx((11 * 14 * 26) ** (1 / 3) - 10)
    t = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [2.0, 1.0, np.nan]},
                     index=["p1", "p2", "p3"])
    taus, rho = profile(t)
    at = dict(zip(taus, zip(rho["a"], rho["b"])))
    assert at[1.0] == (pytest.approx(2 / 3), pytest.approx(1 / 3))  # a best on p1 and p3
    assert at[2.0] == (1.0, pytest.approx(2 / 3))  # b never solves p3
    s = summary(t, 0.0).set_index("competitor")
    assert list(s["solved"]) == [3, 2]
    sgm = s.filter(like="shifted geometric mean").iloc[:, 0]  # over p1, p2 only
    assert sgm["a"] == pytest.approx(np.sqrt(1000 * 2000)) == sgm["b"]


def test_an_instance_counts_as_solved_only_when_every_repeat_was():
    m = pd.DataFrame({"run_id": "r", "suite": "s", "instance": ["p", "p", "q", "q", "z"],
                      "solver": "x", "solver_options": None, "formulation": "core",
                      "seconds": [0.1, 0.2, 0.1, 0.3, None],
                      "status": ["ok", "ok", "ok", "failed", "not solved: no focal node"]})
    t = times(m)
    assert t.loc["p", "x"] == pytest.approx(0.15) and np.isnan(t.loc["q", "x"])
    assert list(t.index) == ["p", "q"]  # an index answered without an LP is no instance


def test_report_compares_two_runs_with_profiles_in_a_page(measured, library, tmp_path):
    out, _ = measured
    second = tmp_path / "second"
    r = cli("bench", "--instances", library, "--solvers", "highspy", "--repeat", "1",
            "--out", second)
    assert r.returncode == 0, r.stderr
    r = cli("bench", "--report", out, second, "--shift", "1", "--out", tmp_path / "report")
    assert r.returncode == 0, r.stderr
    page = tmp_path / "report" / "report.html"
    html = page.read_text()
    assert "shift of 1 ms" in html and "Suite: instances paper" in html
    png = tmp_path / "report" / "profile_instances_paper.png"
    assert png.stat().st_size > 10_000
    assert (tmp_path / "report" / "profile_instances_paper.svg").read_text().startswith("<?xml")
    s = pd.read_csv(tmp_path / "report" / "summary_instances_paper.csv")
    runs = [pd.read_csv(f / "runs.csv", dtype={"run_id": str})["run_id"].iloc[0] for f in (out, second)]
    assert list(s["competitor"]) == [f"{x} @{runs[0]}" for x in SOLVERS] + \
        [f"highspy @{runs[1]}"]
    assert s["solved"].eq(200).all() and s.iloc[:, 3].gt(0).all()
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (.ci/run installs Debian's chromium package)")
    shot = tmp_path / "shot.png"
    profile_dir = tmp_path / "profile"
    subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile_dir}",
                    "--window-size=1100,1400", f"--screenshot={shot}", page.as_uri()],
                   check=True, timeout=120, capture_output=True)
    img = mpimg.imread(shot)[..., :3]
    # the profile's coloured lines are drawn: pixels far from grey
    colour = (img.max(axis=2) - img.min(axis=2)) > 0.3
    assert colour.mean() > 0.001, "no profile drawn in the page"
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile_dir}", "--dump-dom",
                          page.as_uri()], check=True, timeout=120, capture_output=True,
                         text=True).stdout
    assert 'src="profile_instances_paper.png"' in dom and runs[1] in dom


def test_export_all_names_each_variant_of_a_sweep(tmp_path, tiny_flows):
    """A sweep's variants are exported too, named vK__..., with the variant's label; their
    indices are the run's, and HiGHS solves every file to the manifest's objective."""
    from conftest import TINY_SCENARIO, write_scenario

    from chokepoint.api import run

    body = TINY_SCENARIO + "sweep: {focal: [{China: [China]}, {Australia: [Australia]}]}\n"
    path = write_scenario(tmp_path, body)
    r = cli("export-lp", path, "--all", "--out", tmp_path / "lib")
    assert r.returncode == 0, r.stderr
    m = pd.read_csv(tmp_path / "lib" / "manifest.csv")
    assert len(m) == 2 * 4 and m["instance"].is_unique
    assert list(m["instance"].str.split("__").str[0].unique()) == ["v0", "v1"]
    assert m["variant"].notna().all() and m["variant"].nunique() == 2
    # the same scenario gives the same bytes (a library can be published and checked)
    r = cli("export-lp", path, "--all", "--out", tmp_path / "again")
    assert r.returncode == 0, r.stderr
    for name in ["manifest.csv", *m["file"]]:
        assert (tmp_path / "lib" / name).read_bytes() == (tmp_path / "again" / name).read_bytes()
    run(path, out=tmp_path / "out", workers=1)
    vi = pd.read_csv(tmp_path / "out" / "vulnerability.csv")
    for row in m.itertuples():
        v = int(row.instance.split("__")[0][1:])
        want = vi[(vi["variant"] == v) & (vi["focal"] == row.focal) & (vi["case"] == row.case)]
        assert row.index == pytest.approx(float(want["vi"].iloc[0]), abs=1e-9), row
    r = cli("bench", "--instances", tmp_path / "lib", "--solvers", "highspy", "--repeat", "1",
            "--out", tmp_path / "bench")
    assert r.returncode == 0, r.stderr
    assert (pd.read_csv(tmp_path / "bench" / "measurements.csv")["status"] == "ok").all()


def test_bench_of_a_scenario_measures_every_index_and_stage_step(tmp_path, tiny_flows):
    from conftest import TINY_SCENARIO, write_scenario

    path = write_scenario(tmp_path, TINY_SCENARIO)
    r = cli("bench", path, "--repeat", "2", "--out", tmp_path / "bench")
    assert r.returncode == 0, r.stderr
    ms = pd.read_csv(tmp_path / "bench" / "measurements.csv")
    full = ms[ms["instance"].str.count("__") == 2]
    # 2 focal sets x 1 pair x 4 cases x 2 repeats, and the stage steps beside them
    assert len(full) == 2 * 4 * 2 and len(ms) > len(full)
    assert set(ms["suite"]) == {"scenario tiny"} and set(ms["formulation"]) == {"scenario"}
    table = pd.read_csv(tmp_path / "bench" / "bench.csv")
    ok = ms.loc[ms["status"] == "ok", "seconds"] * 1000
    assert table["solve_median_ms"].iloc[0] == pytest.approx(ok.median(), rel=1e-12)


@pytest.mark.parametrize("solver, message", [
    ("highspy:bogus=1", "HiGHS rejects the option bogus=1"),
    ("glpk:bogus=1", "Invalid option '--bogus'"),
    ("cbc:bogus=1", "cbc knows no parameter 'bogus'"),
])
def test_options_a_solver_rejects_are_an_error_before_measuring(library, tmp_path, solver,
                                                                message):
    name = solver.split(":")[0]
    if name in ("glpk", "cbc") and name not in SOLVERS:
        pytest.skip(f"{name} is not installed here")
    r = cli("bench", "--instances", library, "--solvers", "highspy", solver, "--out",
            tmp_path / "out")
    assert r.returncode == 1 and f"--solvers {solver}: " in r.stderr and message in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "out").exists()


def test_export_all_never_replaces_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    r = cli("export-lp", "paper_2020", "--all", "--out", tmp_path / "mine")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]

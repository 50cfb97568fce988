"""Users' constraint families: Python files and YAML, in every process that builds a model,
swept, sampled, recorded and diagnosed. On the 2020 networks built from data/."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import xarray as xr

from chokepoint.api import run, vulnerability
from chokepoint.runs.scenario import load_scenario

from conftest import write_scenario

RULES = Path(__file__).parent / "fixtures" / "capped_rules.py"

BASE = """\
name: ext
network: {year: 2020}
pairs: [LFP-lithium, NCM-lithium]
stage_contributions: false
focal:
  China: [China]
  Australia: [Australia]
  Chile: [Chile]
"""
EXT = BASE + "extensions: [capped_rules.py]\n"
YAML_FAMILY = BASE + """\
constraints:
  capped_arcs:
    title: Capped named arcs
    cases: [optimistic, pessimistic_a, pessimistic_b]
    foreach: arcs
    where: source == China_ref and target == "Korea, Republic of_cath_poss"
    equation: touched <= tonnes * (focal_source + share)
    parameters: {share: 0.0}
"""


@pytest.fixture
def folder(tmp_path) -> Path:
    shutil.copy(RULES, tmp_path / "capped_rules.py")
    return tmp_path


def cli(*args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chokepoint.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_extension_binds_and_sweeps_identically_everywhere(folder):
    """The README's example: share 0, then a sweep over 0.25 and 0.5 in this process, on two
    worker processes and on a local Dask cluster: the same numbers, byte for byte."""
    pytest.importorskip("dask.distributed")
    plain = run(write_scenario(folder, BASE, "plain.yaml"), write_files=False)
    capped = run(write_scenario(folder, EXT, "ext.yaml"), write_files=False)
    key = dict(focal="Australia", chemistry="NCM", material="lithium")
    free = plain.dataset["vi"].sel(**key)
    tight = capped.dataset["vi"].sel(**key)
    # capping China's refined lithium to Korea binds in pessimistic A for Australia's ore (NCM)
    assert float(tight.sel(case="pessimistic_a")) < float(free.sel(case="pessimistic_a")) - 1e-4
    assert float(tight.sel(case="proportional")) == float(free.sel(case="proportional"))
    sweep = write_scenario(folder, EXT + "sweep: {parameters.capped_arcs.share: [0.25, 0.5]}\n",
                           "sweep.yaml")
    outs = {}
    for how, extra in (("inproc", ["--workers", "1"]), ("pool", ["--workers", "2"]),
                       ("dask", ["--dask", "local"])):
        res = cli("run", str(sweep), "--out", str(folder / how), "--quiet", "--no-progress",
                  *extra, cwd=folder)
        assert res.returncode == 0, res.stderr
        outs[how] = (folder / how / "results.nc").read_bytes()
    assert outs["inproc"] == outs["pool"] == outs["dask"]
    ds = xr.open_dataset(folder / "pool" / "results.nc", engine="h5netcdf")
    shares = ds["parameters.capped_arcs.share"].values.tolist()
    assert shares == [0.25, 0.5]
    a = ds["vi"].sel(**key, case="pessimistic_a").values
    assert a[0] <= a[1] + 1e-12 and a[1] <= float(free.sel(case="pessimistic_a")) + 1e-12
    csv = pd.read_csv(folder / "pool" / "vulnerability.csv")
    assert list(csv.columns[:2]) == ["variant", "parameters.capped_arcs.share"]
    assert set(csv.groupby("variant")["parameters.capped_arcs.share"].unique().map(
        tuple)) == {(0.25,), (0.5,)}


def test_yaml_family_gives_the_numbers_of_the_python_family(folder):
    py = run(write_scenario(folder, EXT, "py.yaml"), write_files=False).dataset
    ya = run(write_scenario(folder, YAML_FAMILY, "ya.yaml"), write_files=False).dataset
    xr.testing.assert_allclose(py["vi"], ya["vi"], atol=1e-12)
    ya_half = run(write_scenario(folder, YAML_FAMILY + "parameters: {capped_arcs.share: 0.5}\n",
                                 "ya2.yaml"), write_files=False).dataset
    py_half = run(write_scenario(folder, EXT + "parameters: {capped_arcs.share: 0.5}\n",
                                 "py2.yaml"), write_files=False).dataset
    xr.testing.assert_allclose(py_half["vi"], ya_half["vi"], atol=1e-12)


def test_results_record_every_active_family(folder):
    import json

    ds = run(write_scenario(folder, EXT + "parameters: {capped_arcs.share: 0.25}\n"),
             out=folder / "out").dataset
    on_disk = xr.open_dataset(folder / "out" / "results.nc", engine="h5netcdf")
    fams = json.loads(on_disk.attrs["constraint_families"])
    assert fams == json.loads(ds.attrs["constraint_families"])
    assert fams[0]["name"] == "capped_arcs" and fams[0]["parameters"] == {"share": 0.25}
    assert fams[0]["cases"] == ["optimistic", "pessimistic_a", "pessimistic_b"]
    assert fams[0]["equation"].startswith(r"x_a \le v_a")
    ext = json.loads(on_disk.attrs["extensions"])
    assert ext[0]["extension"] == "capped_rules.py" and len(ext[0]["sha256"]) == 64


def test_families_switch_by_name_and_sweep_formulations(folder):
    body = EXT + "sweep: {families.capped_arcs: [true, false]}\n"
    ds = run(write_scenario(folder, body), write_files=False, workers=1).dataset
    plain = run(write_scenario(folder, BASE, "plain.yaml"), write_files=False).dataset
    xr.testing.assert_allclose(ds["vi"].isel(variant=1, drop=True), plain["vi"], atol=0)
    assert ds["active_families"].values.tolist() == ["capped_arcs(share=0)", ""]
    off = run(write_scenario(folder, EXT + "families: {capped_arcs: false}\n", "off.yaml"),
              write_files=False).dataset
    xr.testing.assert_allclose(off["vi"], plain["vi"], atol=0)


def test_sensitivity_samples_a_family_parameter(folder):
    body = EXT + """\
sensitivity:
  samples: 4
  method: grid
  parameters:
    - {parameter: capped_arcs.share, range: [0.0, 1.0]}
"""
    ds = run(write_scenario(folder, body), write_files=False, workers=1).dataset
    values = ds["parameter_capped_arcs.share"].values.tolist()
    assert values[0] == 0.0 and values[1:] == pytest.approx([0, 1 / 3, 2 / 3, 1])
    a = ds["vi"].sel(focal="Australia", chemistry="NCM", material="lithium",
                     case="pessimistic_a").values
    assert a[0] == pytest.approx(a[1], abs=1e-12)
    assert all(x <= y + 1e-12 for x, y in zip(a[1:], a[2:])) and a[-1] > a[1] + 0.1


def test_python_api_takes_family_objects():
    import chokepoint
    from chokepoint.lp.extensions import load_extension
    from chokepoint.networks import build_networks

    capped = load_extension(str(RULES)).families[0]
    nets = build_networks(["lithium"])
    ds = chokepoint.vulnerability(nets, {"Australia": ["Australia"]}, pairs=["NCM-Li"],
                                  families=[capped], parameters={"capped_arcs.share": 0.0})
    free = vulnerability(nets, {"Australia": ["Australia"]}, pairs=["NCM-Li"])
    a = dict(focal="Australia", chemistry="NCM", material="lithium", case="pessimistic_a")
    assert float(ds["vi"].sel(**a)) < float(free["vi"].sel(**a))
    assert "capped_arcs" in ds.attrs["constraint_families"]


def test_math_prints_the_scenarios_families(folder):
    write_scenario(folder, EXT)
    res = cli("math", "scenario.yaml", "--set", "parameters.capped_arcs.share=0.5", cwd=folder)
    assert res.returncode == 0, res.stderr
    assert "`capped_arcs` (Capped named arcs; user rows; in: optimistic, pessimistic_a, " \
           "pessimistic_b; parameters: `share` = 0.5; rows: lithium 1)" in res.stdout
    assert "| `pessimistic_b` | maximize | $x_a$ (arcs) | `focal_origin`, `clean_origin`, " \
           "`touched_mass_balance`, `uncertain_release`, `capped_arcs` |" in res.stdout


def test_extension_flag_and_network_solver_note(folder):
    write_scenario(folder, BASE)
    res = cli("run", "scenario.yaml", "--extension", "capped_rules.py", "--set",
              "solver=network", "--out", "out", "--no-progress", cwd=folder)
    assert res.returncode == 0, res.stderr
    assert "note: solver network serves the core families only: with capped_arcs, " \
           "optimistic, pessimistic_a, pessimistic_b are solved by highspy" in res.stderr


def test_changed_extension_source_discards_saved_parts(folder):
    import chokepoint.runs.sweep as sweep
    from chokepoint.runs.parts import PartStore, fingerprint

    path = write_scenario(folder, EXT + "sweep: {parameters.capped_arcs.share: [0.25, 0.5]}\n")
    scen = load_scenario(path)
    _, _, tasks = sweep.make_tasks(scen, {})
    PartStore(folder / "out", fingerprint(tasks, [])).save(
        tasks[0].key, sweep.run_task(tasks[0], sweep.task_inputs(tasks[:1])))
    rules = folder / "capped_rules.py"
    rules.write_text(rules.read_text().replace("(m.focal[s] + share)", "(m.focal[s] + 2 * share)"))
    scen = load_scenario(path)
    _, _, tasks2 = sweep.make_tasks(scen, {})
    assert tasks2[0].extensions != tasks[0].extensions
    assert PartStore(folder / "out", fingerprint(tasks2, [])).load(tasks2[0].key) is None


def test_an_extension_sent_by_content_never_opens_its_file(tmp_path, monkeypatch):
    """What a worker does with the rules a run sent it: the bytes run, named by their file and
    checked against their SHA-256; no file of that name need exist."""
    import hashlib

    from chokepoint.errors import ChokepointError, ScenarioError
    from chokepoint.lp.extensions import extension_contents, load_extension

    code = RULES.read_bytes()
    sha = hashlib.sha256(code).hexdigest()
    with pytest.raises(ScenarioError, match="gone.py: no such extension file"):
        load_extension("gone.py", tmp_path)
    with extension_contents({"gone.py": code}):
        ext = load_extension("gone.py", tmp_path, sha256=sha)
        with pytest.raises(ChokepointError, match="changed since the run started"):
            load_extension("gone.py", tmp_path, sha256="0" * 64)
    assert (ext.label, ext.sha256, ext.content) == ("gone.py", sha, code)
    assert [(f.name, f.source) for f in ext.families] == [("capped_arcs",
                                                           f"gone.py#sha256={sha[:12]}")]
    bad = b"import chokepoint\n\nraise ValueError('no rules today')\n"
    with extension_contents({"bad.py": bad}), pytest.raises(
            ScenarioError, match=r"^extensions: bad.py:3: ValueError: no rules today$"):
        load_extension("bad.py", tmp_path)
    assert not list(tmp_path.iterdir())  # nothing written where the files would be
    (tmp_path / "rules.py").write_bytes(code)
    monkeypatch.setattr(sys, "dont_write_bytecode", False)  # as Python runs by default
    assert load_extension("rules.py", tmp_path).sha256 == sha
    assert [p.name for p in tmp_path.iterdir()] == ["rules.py"]  # no __pycache__ beside it


@pytest.mark.parametrize("body, pattern", [
    ("extensions: [missing.py]", r"extensions\[0\]: missing.py: no such extension file"),
    ("extensions: [broken.py]", r"extensions\[0\]: broken.py:2: syntax error"),
    ("extensions: [empty.py]", r"empty.py defines no constraint family"),
    ("extensions: [capped_rules.py]\nfamilies: {caped_arcs: false}",
     r"families.caped_arcs: no constraint family 'caped_arcs' \(did you mean 'capped_arcs'\?\)"),
    ("extensions: [capped_rules.py]\nparameters: {capped_arcs.shar: 1}",
     r"parameters.capped_arcs.shar: 'capped_arcs.shar' is no parameter of an active family "
     r"\(did you mean 'capped_arcs.share'\?\)"),
    ("constraints: {c: {title: t, foreach: arcs, equation: 'touched <= tonnes * shar', "
     "parameters: {share: 0}}}", r"constraints.c.equation: unknown name 'shar' \(did you mean "
                                 r"'share'\?\)"),
    ("constraints: {c: {title: t, foreach: arcs, equation: 'touched * touched <= 1'}}",
     r"constraints.c.equation: a product of two touched terms is not linear"),
    ("constraints: {c: {title: t, foreach: arcs, equation: 'touched <= tonnes',"
     " where: 'sorce == China_ref'}}",
     r"constraints.c.where: 'sorce' is no selector of arcs \(did you mean 'source'\?\)"),
    ("constraints: {c: {title: t, foreach: nodes, equation: 'touched_in <= inflow',"
     " where: 'stage == cathod'}}",
     r"constraints.c.where: unknown stage 'cathod' \(did you mean 'cathode_pool'\?\)"),
    ("constraints: {c: {title: t, foreach: arcs, equation: 'touched <= <= tonnes'}}",
     r"constraints.c.equation: cannot parse the equation at column"),
    ("constraints: {c: {title: t, foreach: edges, equation: 'touched <= 1'}}",
     r"constraints.c.foreach: 'edges' is neither arcs nor nodes"),
    ("constraints: {c: {title: t, foreach: arcs, equation: 'tonnes <= 1'}}",
     r"constraints.c.equation: it involves no touched flow"),
])
def test_extension_mistakes_are_one_line_errors(folder, body, pattern):
    (folder / "broken.py").write_text("import chokepoint\ndef f(:\n")
    (folder / "empty.py").write_text("x = 1\n")
    path = write_scenario(folder, BASE + body + "\n")
    res = cli("validate", str(path), cwd=folder)
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert pytest.importorskip("re").search(pattern, lines[0]), lines[0]


def test_infeasible_family_is_named_from_the_command_line(folder):
    body = BASE + """\
constraints:
  no_touched_product:
    title: Nothing touched becomes LFP
    cases: [pessimistic_a]
    foreach: arcs
    where: target == LFP
    equation: touched <= 0
"""
    write_scenario(folder, body)
    res = cli("run", "scenario.yaml", "--out", "out", cwd=folder)
    assert res.returncode == 1
    line = res.stderr.strip().splitlines()[-1]
    assert "returned status Infeasible for focal set 'China', pair LFP-lithium, case " \
           "pessimistic_a, user families: no_touched_product()" in line
    assert "without no_touched_product it solves" in line
    assert not (folder / "out").exists()

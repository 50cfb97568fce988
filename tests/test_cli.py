"""The CLI on good and bad input: one-line errors, non-zero exit, no traceback, nothing written."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pandas as pd
import pytest
import xarray as xr

from chokepoint.network import Network

from conftest import ROOT, TINY_ARCS, TINY_SCENARIO, write_scenario


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "chokepoint.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)


def test_run_writes_labelled_results(tmp_path, tiny_flows):
    scen = write_scenario(tmp_path, TINY_SCENARIO)
    out = tmp_path / "out"
    r = run_cli("run", scen, "--out", out)
    assert r.returncode == 0, r.stderr
    assert "Australia: vulnerability index" in r.stdout
    assert "LFP-Li" in r.stdout and "60.0" in r.stdout  # pessimistic A, 60/95... rounded below
    vul = pd.read_csv(out / "vulnerability.csv")
    assert list(vul.columns) == ["focal", "chemistry", "material", "case", "vi"]
    assert vul["vi"].between(0, 1).all()
    stages = pd.read_csv(out / "stage_contributions.csv")
    assert list(stages.columns) == ["focal", "chemistry", "material", "case", "stage",
                                    "vi_cumulative"]
    assert set(stages["stage"]) == {"mining", "refining", "cathode"}
    ds = xr.open_dataset(out / "results.nc", engine="h5netcdf")
    assert ds.vi.attrs["units"] == "1"
    assert "Pessimistic B" in ds.case.attrs["pessimistic_b"]
    assert float(ds.vi.sel(focal="Australia", chemistry="LFP", material="lithium",
                           case="optimistic")) == pytest.approx(30 / 95)
    assert ds.attrs["scenario"] == "tiny"


def test_default_output_is_results_name(tmp_path, tiny_flows):
    scen = write_scenario(tmp_path, TINY_SCENARIO)
    r = run_cli("run", scen, "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "results" / "tiny" / "vulnerability.csv").is_file()


def _expect_error(tmp_path, body, pattern, arcs=None, out_name="out"):
    flows = tmp_path / "flows"
    flows.mkdir(exist_ok=True)
    if arcs is not None:
        pd.DataFrame(arcs, columns=["Source", "Target", "Value"]).to_csv(
            flows / "lithium_2020.csv", index=False)
    else:
        Network.from_arcs(TINY_ARCS).to_csv(flows / "lithium_2020.csv")
    scen = write_scenario(tmp_path, body)
    out = tmp_path / out_name
    r = run_cli("run", scen, "--out", out)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("chokepoint: error: ")
    assert re.search(pattern, lines[0]), lines[0]
    assert not out.exists()
    assert not any(p.name.startswith(f".{out_name}") for p in tmp_path.iterdir())
    return lines[0]


@pytest.mark.parametrize("old, new, pattern", [
    ("China: [China]", "China: [Chna]",  # misspelt country
     r"scenario.yaml:\d+: focal.China.*\[0\]: unknown country 'Chna' \(did you mean 'China'\?\)"),
    ("China: [China]", "China: [Atlantis]", r"unknown country 'Atlantis'"),
    ("pairs:", "pair:", r"scenario.yaml:5: pair: unknown key 'pair' \(did you mean 'pairs'\?\)"),
    ("focal:", "cases: [proportional, pesimistic_a]\nfocal:",
     r"cases\[1\]: unknown case 'pesimistic_a' \(did you mean 'pessimistic_a'\?\)"),
    ("[LFP-lithium]", "[LFP-lithum]",
     r"pairs\[0\].*unknown material 'lithum' \(did you mean 'lithium'\?\)"),
    ("[LFP-lithium]", "[LFP-cobalt]", r"LFP contains no cobalt"),
])
def test_scenario_mistakes_are_one_line_errors(tmp_path, old, new, pattern):
    _expect_error(tmp_path, TINY_SCENARIO.replace(old, new), pattern)


def test_malformed_yaml(tmp_path):
    _expect_error(tmp_path, "name: x\nfocal: [China\n", r"scenario.yaml:\d+: malformed YAML")


def test_negative_tonnage(tmp_path):
    arcs = [list(a) for a in TINY_ARCS]
    arcs[0][2] = -60.0
    _expect_error(tmp_path, TINY_SCENARIO, r"lithium_2020.csv: row 2: negative tonnage",
                  arcs=arcs)


def test_unbalanced_node(tmp_path):
    arcs = [list(a) for a in TINY_ARCS]
    arcs[2][2] = 90.0
    _expect_error(tmp_path, TINY_SCENARIO, r"node 'China_ref_poss' is unbalanced", arcs=arcs)


def test_missing_flows_directory(tmp_path):
    body = TINY_SCENARIO.replace("flows: flows", "flows: nowhere")
    _expect_error(tmp_path, body, r"network.flows: flows folder .*nowhere.* does not exist")


def test_missing_material_file(tmp_path):
    body = TINY_SCENARIO.replace("[LFP-lithium]", "[NCM-cobalt]")
    _expect_error(tmp_path, body, r"cobalt_2020.csv: no cobalt network for 2020")


def test_unavailable_solver(tmp_path):
    _expect_error(tmp_path, TINY_SCENARIO + "solver: glkp\n",
                  r"unknown solver 'glkp' \(did you mean 'glpk'\?\)")


def test_missing_scenario_file(tmp_path):
    r = run_cli("run", tmp_path / "none.yaml")
    assert r.returncode == 1 and "no such scenario file" in r.stderr
    assert "Traceback" not in r.stderr


def test_validate_does_not_solve_or_write(tmp_path, tiny_flows):
    scen = write_scenario(tmp_path, TINY_SCENARIO)
    r = run_cli("validate", scen, cwd=tmp_path)
    assert r.returncode == 0 and "ok: 2 focal sets" in r.stdout
    assert not (tmp_path / "results").exists()


def test_bench_reports_build_and_solve(tmp_path, tiny_flows):
    scen = write_scenario(tmp_path, TINY_SCENARIO)
    r = run_cli("bench", scen, "--repeat", "1", "--out", tmp_path / "bench")
    assert r.returncode == 0, r.stderr
    assert "model build per network: lithium" in r.stdout
    assert "solve per LP: median" in r.stdout
    assert "authors" not in r.stdout  # their time is of the paper grid, not of this work
    assert (tmp_path / "bench" / "bench.csv").read_text().count("scenario tiny") == 1


def test_paper_scenario_builds_from_shipped_data(tmp_path):
    """The README's main command: no flows folder, networks built from data/."""
    from conftest import ROOT

    r = run_cli("run", ROOT / "scenarios" / "paper_2020.yaml", "--out", tmp_path / "paper")
    assert r.returncode == 0, r.stderr
    vul = pd.read_csv(tmp_path / "paper" / "vulnerability.csv")
    assert set(vul["focal"]) >= {"China", "Russia", "DR Congo", "South Africa"}
    assert len(vul[vul.material != "all"]) == 10 * 5 * 4
    ds = xr.open_dataset(tmp_path / "paper" / "results.nc", engine="h5netcdf")
    assert ds.attrs["profile"] == "paper"


def test_network_export_both_formats(tmp_path):
    out = tmp_path / "li.csv"
    r = run_cli("network", "--material", "lithium", "--year", "2020", "--format", "cheng-csv",
                "--out", out)
    assert r.returncode == 0, r.stderr
    assert out.read_text().splitlines()[0] == "Source,Target,Value"
    again = Network.read_csv(out)
    assert again.product_supply("LFP") == pytest.approx(3916.0)
    # a flows file is never replaced (nothing in it says chokepoint wrote it)
    r = run_cli("network", "--material", "lithium", "--format", "csv", "--out", out)
    assert r.returncode == 1 and "cannot tell it wrote it" in r.stderr, r.stderr
    out = tmp_path / "li-provenance.csv"
    for _ in range(2):  # the csv format's own header: chokepoint's file, replaced
        r = run_cli("network", "--material", "lithium", "--format", "csv", "--out", out)
        assert r.returncode == 0, r.stderr
    assert out.read_text().splitlines()[0] == "source,target,tonnes,provenance"
    r = run_cli("network", "--material", "lithium", "--format", "xlsx", "--out", out)
    assert r.returncode == 1 and "choose from cheng-csv, csv" in r.stderr


def test_data_check_reports_and_passes():
    r = run_cli("data", "check", "--year", "2020")
    assert r.returncode == 0, r.stderr
    for word in ("lithium", "phosphorus", "URMS", "TFCR", "raw trade by HS code",
                 "largest residual", "all nodes balance"):
        assert word in r.stdout
    r = run_cli("data", "check", "--year", "2018")
    assert r.returncode == 1 and "no production inputs for 2018" in r.stderr


def test_unknown_profile_in_scenario(tmp_path):
    body = TINY_SCENARIO.replace("  flows: flows\n", "  profile: papr\n")
    _expect_error(tmp_path, body, r"network.profile: unknown profile 'papr' "
                                  r"\(did you mean 'paper'\?\)")


def test_close_imbalances_reads_an_unbalanced_network(tmp_path):
    arcs = [list(a) for a in TINY_ARCS] + [["Canada_cath_poss", "LFP", 5.0]]
    body = TINY_SCENARIO.replace("  year: 2020\n", "  year: 2020\n  close_imbalances: true\n")
    flows = tmp_path / "flows"
    flows.mkdir()
    pd.DataFrame(arcs, columns=["Source", "Target", "Value"]).to_csv(
        flows / "lithium_2020.csv", index=False)
    scen = write_scenario(tmp_path, body)
    r = run_cli("run", scen, "--out", tmp_path / "out", "--quiet")
    assert r.returncode == 0, r.stderr
    vul = pd.read_csv(tmp_path / "out" / "vulnerability.csv")
    korea = vul[(vul.focal == "China") & (vul.case == "optimistic")]["vi"].item()
    assert korea == pytest.approx(70 / 100)  # Canada's 5 t come from MRMT, untouched


@pytest.mark.parametrize("setting, message", [
    ("netwrk.year=2019", "--set netwrk.year: netwrk: unknown key 'netwrk' (did you mean "
                         "'network'?)"),
    ("network.year=abc", "--set network.year: network.year: Input should be a valid integer"),
])
def test_a_bad_set_is_blamed_on_the_command_line_not_the_file(setting, message):
    r = run_cli("validate", "paper_2020", "--set", setting)
    assert r.returncode == 1 and message in r.stderr and "paper_2020.yaml:" not in r.stderr


def test_init_gives_a_commented_scaffold_that_runs_as_it_is(tmp_path):
    study = tmp_path / "study"
    r = run_cli("init", study, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in study.iterdir()) == ["blocs.yaml", "rules.py", "scenario.yaml"]
    text = (study / "scenario.yaml").read_text(encoding="utf-8")
    rules = (study / "rules.py").read_text(encoding="utf-8")
    assert "Table 2" not in text and "paper-2020" not in text
    # each thing a newcomer looks for is there: a Python family selecting by owner and stage,
    # a YAML family with group_by, a bloc and a data condition, a parameter sweep, an edit
    assert "m.owner[" in rules and "m.stage[" in rules and "extensions: [rules.py]" in text
    assert re.search(r"group_by: \[\w+\]", text) and "bloc(" in text and "tonnes >" in text
    assert re.search(r"^sweep:\n  parameters\.", text, re.M)
    assert re.search(r"^#edits:\n#  - \{kind: ", text, re.M)
    # as it is: every feature on but the edit; the sweep's two values give different bounds
    r = run_cli("run", study / "scenario.yaml", "--quiet", "--no-progress", "--workers", "2",
                cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    with xr.open_dataset(tmp_path / "results" / "my-scenario" / "results.nc",
                         engine="h5netcdf") as ds:
        assert ds.sizes["variant"] == 2
        families = {f["name"] for f in json.loads(ds.attrs["constraint_families"])}
        assert families == {"cross_border_refined", "fta_cathode_intake"}
        worst = ds.vi.sel(case="pessimistic_a").to_series().dropna().unstack("variant")
        assert len(worst) == 12  # 3 focal sets x (3 pairs and NCM's aggregate)
        assert (worst[0] <= worst[1] + 1e-9).all() and (worst[0] < worst[1] - 1e-6).any()
    # the commented-out edit is valid once its `#` is removed
    edited = re.sub(r"^#(?=\S|  - )", "", text, flags=re.M)
    assert "\nedits:\n  - {kind: scale_production" in edited
    (study / "scenario.yaml").write_text(edited, encoding="utf-8")
    r = run_cli("validate", study / "scenario.yaml", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    # a second init into the same folder changes nothing
    r = run_cli("init", study, cwd=tmp_path)
    assert r.returncode == 1 and "already there" in r.stderr
    assert rules == (study / "rules.py").read_text(encoding="utf-8")


def _bare(text: str) -> str:
    """Text without whitespace: --help wraps lines (at spaces and hyphens), the page does not."""
    return re.sub(r"\s+", "", text)


def test_the_cli_reference_is_generated_and_agrees_with_help():
    import importlib.util

    page = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert "<!-- generated: cli -->" in page
    assert not re.search(r"^\| `chokepoint", page, re.M), "a hand-written command table"
    spec = importlib.util.spec_from_file_location("hooks", ROOT / "docs" / "hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    site = hooks.on_page_markdown(page, None, None, None)  # what the docs site shows
    parts = re.split(r"^### `(chokepoint[^`]*)`$", site, flags=re.M)
    sections = dict(zip(parts[1::2], parts[2::2]))
    assert {"chokepoint run", "chokepoint init", "chokepoint export-lp", "chokepoint math",
            "chokepoint bench", "chokepoint data import-trademap",
            "chokepoint data check"} <= set(sections)
    bench = sections["chokepoint bench"]
    assert all(f"`{opt}`" in bench for opt in ("--families SCENARIO", "--chain-sizes N [N ...]",
                                                "--flows FILE"))
    assert "chain:" in bench
    top = run_cli("--help")
    assert top.returncode == 0, top.stderr
    for words, section in sections.items():
        res = run_cli(*words.split()[1:], "--help")
        assert res.returncode == 0, res.stderr
        shown = _bare(res.stdout)
        # the page's usage, description and every argument with its meaning are --help's
        usage = re.search(r"```text\n(.*?)```", section, re.S).group(1)
        assert _bare(usage) in shown, words
        description = section.split("```text")[0]
        assert _bare(description) in shown, words
        rows = re.findall(r"^\| `([^`]+)` \| (.*) \|$", section, re.M)
        assert len(rows) == len(re.findall(r"^  (?:-|\w)", res.stdout.split("\n\n", 2)[-1],
                                           re.M)) - 1, words  # -1: --help itself
        for flag, meaning in rows:
            assert _bare(flag) in shown and _bare(meaning) in shown.replace("|", "/"), \
                (words, flag)
        assert words.split()[1] in top.stdout  # and the command is listed by chokepoint --help
    assert "README" not in run_cli("math", "--help").stdout


# -- output hygiene: stdout is the table, stderr the rest, --quiet errors only ----------------

SOLVER_SWEEP = TINY_SCENARIO + "sweep: {solver: [highspy, appsi_highs, highs]}\n"


def test_stdout_is_the_table_alone_in_every_solving_process(tmp_path, tiny_flows):
    """No solver banner or log on stdout, from the main process or a pool's workers
    (HiGHS prints its banner from C, once per process, unless we keep it off)."""
    scen = write_scenario(tmp_path, SOLVER_SWEEP)
    r = run_cli("run", scen, "--out", tmp_path / "out", "--workers", "2", "--no-progress",
                cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("variant 0: solver=highspy\nAustralia: vulnerability index"), \
        r.stdout[:300]
    assert "HiGHS" not in r.stdout + r.stderr
    quiet = run_cli("run", scen, "--out", tmp_path / "out", "--workers", "2", "--quiet",
                    cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout == "" and quiet.stderr == ""


def test_quiet_prints_errors_only_and_verbose_logs_solvers_on_stderr(tmp_path):
    """paper_2020 has notes (focal sets with no node): shown normally, not with --quiet; with
    --verbose the solvers' logs go to stderr and stdout is the same table."""
    plain = run_cli("run", "paper_2020", "--out", tmp_path / "a", cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert "chokepoint: note:" in plain.stderr and "wrote " in plain.stderr
    quiet = run_cli("run", "paper_2020", "--out", tmp_path / "b", "--quiet", cwd=tmp_path)
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == "", quiet.stderr
    verbose = run_cli("run", "paper_2020", "--out", tmp_path / "c", "--verbose", cwd=tmp_path)
    assert verbose.returncode == 0, verbose.stderr
    assert verbose.stdout == plain.stdout
    assert "Running HiGHS" in verbose.stderr and "Objective value" in verbose.stderr
    bad = run_cli("run", "paper_2020", "--out", tmp_path / "d", "--quiet", "--set",
                  "solver=glkp", cwd=tmp_path)
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.startswith("chokepoint: error: ") and len(bad.stderr.splitlines()) == 1


@pytest.mark.parametrize("solver", ["glpk", "cbc"])
def test_a_pyomo_solvers_log_goes_to_stderr_with_verbose(tmp_path, tiny_flows, solver):
    from chokepoint.bench.suites import SolverChoice

    if SolverChoice.parse(solver).unavailable():
        pytest.skip(f"{solver} is not installed (Debian: glpk-utils, coinor-cbc)")
    scen = write_scenario(tmp_path, TINY_SCENARIO + f"solver: {solver}\n")
    plain = run_cli("run", scen, "--out", tmp_path / "a", cwd=tmp_path)
    verbose = run_cli("run", scen, "--out", tmp_path / "b", "--verbose", cwd=tmp_path)
    assert plain.returncode == verbose.returncode == 0, plain.stderr + verbose.stderr
    assert verbose.stdout == plain.stdout
    assert len(verbose.stderr.splitlines()) > len(plain.stderr.splitlines()) + 10


def test_the_python_api_prints_nothing_and_takes_a_shipped_name_from_any_folder(tmp_path):
    code = ("import chokepoint\n"
            "result = chokepoint.run('paper_2020', progress=False)\n"
            "assert str(result.out_dir) == 'results/paper-2020', result.out_dir\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and "HiGHS" not in r.stderr
    assert (tmp_path / "results" / "paper-2020" / "vulnerability.csv").is_file()

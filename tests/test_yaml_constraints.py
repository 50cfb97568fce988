"""The YAML constraint language: group rows and sums, blocs, data conditions, indexed
parameters, several equations and sub-expressions; the same numbers as the Python route; and
every mistake an error naming the file, line and key, never a silent no-op. On the 2020
networks built from data/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

from chokepoint import build_networks, vulnerability
from chokepoint.lp.extensions import load_extension
from chokepoint.lp.yaml_families import member_fields, yaml_family
from chokepoint.runs.scenario import load_scenario

from conftest import write_scenario

SCENARIOS = Path(__file__).parents[1] / "scenarios"
CONTRACT_RULES = Path(__file__).parent / "fixtures" / "contract_rules.py"

#: The contract's three families, verbatim.
CONTRACT = """\
constraints:
  kj_total:                                   # one row in total
    title: Korea and Japan cathode intake, in total
    foreach: nodes                            # members: arcs | nodes
    group_by: []                              # [] = one row over all members
    where: owner in [Korea, Japan] and stage == cathode_pool
    equation: sum(touched_in) <= share * sum(inflow)
    parameters: {share: 0.35}
  per_owner:                                  # one row per target owner, a cap per owner
    title: Cathode intake per owner
    foreach: arcs
    group_by: [target_owner]
    where: target_stage == cathode_pool
    equation: sum(touched) <= cap * sum(tonnes)
    parameters:
      cap: {by: target_owner, values: {Korea: 0.5, Japan: 0.4}, default: 1.0}
  fta_large:                                  # one row per arc, selected by bloc and by data
    title: Large FTA cathode arcs
    foreach: arcs
    where: target_owner in bloc(us-fta-critical-minerals) and target_stage == cathode_pool and tonnes > 1000
    equation: touched <= tonnes * (share + focal_source)
    parameters: {share: 0.5}
"""
#: Focal sets for which the contract's caps are feasible: China ships 49% of Korea's and
#: Japan's lithium cathode intake itself, above the 35% cap, so with China focal the LP is
#: infeasible (an error naming the families, tested below).
BASE = """\
name: contract
network: {year: 2020}
pairs: [LFP-lithium, NCM-lithium, NCM-cobalt, NCM-nickel]
stage_contributions: false
focal:
  Australia: [Australia]
  DR Congo: [DRC]
  South Africa: [South Africa]
"""
FOCAL = {"Australia": ["Australia"], "DR Congo": ["DRC"], "South Africa": ["South Africa"]}
PAIRS = ["LFP-Li", "NCM-Li", "NCM-Co", "NCM-Ni"]


def cli(*args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chokepoint.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def one_line_error(res) -> str:
    assert res.returncode != 0, res.stdout
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr and "internal error" not in res.stderr, res.stderr
    return lines[0]


@pytest.fixture(scope="module")
def networks():
    return build_networks(["lithium", "cobalt", "nickel"], 2020)


@pytest.fixture(scope="module")
def blocs():
    return yaml.safe_load((SCENARIOS / "blocs.yaml").read_text())


def test_the_contract_in_yaml_gives_the_python_twins_numbers_and_changes_some(tmp_path,
                                                                             networks, blocs):
    path = write_scenario(tmp_path, BASE + CONTRACT)
    scenario = load_scenario(path)
    families, params, _ = scenario.user_families()
    assert [f.name for f in families] == ["kj_total", "per_owner", "fta_large"]
    got = vulnerability(networks, FOCAL, PAIRS, families=families, parameters=params,
                        stage_contributions=False, blocs=blocs).vi
    twins = load_extension(str(CONTRACT_RULES)).families
    want = vulnerability(networks, FOCAL, PAIRS, families=twins, stage_contributions=False,
                         blocs=blocs).vi
    plain = vulnerability(networks, FOCAL, PAIRS, stage_contributions=False).vi
    assert np.allclose(got.values, want.values, atol=1e-9, equal_nan=True)
    changed = np.abs(got - plain) > 1e-6
    assert int(changed.sum()) >= 2  # Australia NCM-Li and DR Congo NCM-Co pessimistic A
    assert not changed.sel(case="proportional").any()  # user families: bounds only
    bounds = ["pessimistic_a", "pessimistic_b"]  # caps never raise a maximum, nor lower a minimum
    assert (got.sel(case=bounds).fillna(0) <= plain.sel(case=bounds).fillna(0) + 1e-9).all()
    assert (got.sel(case="optimistic").fillna(0) >= plain.sel(case="optimistic").fillna(0)
            - 1e-9).all()


def test_rows_are_counted_per_network_and_recorded(tmp_path, networks):
    path = write_scenario(tmp_path, BASE + CONTRACT)
    res = cli("run", str(path), "--out", str(tmp_path / "out"), "--quiet", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    with xr.open_dataset(tmp_path / "out" / "results.nc") as ds:
        import json

        fams = {f["name"]: f for f in json.loads(ds.attrs["constraint_families"])}
    assert fams["kj_total"]["rows"] == {"lithium": 1, "cobalt": 1, "nickel": 1}
    arcs = member_fields(networks["cobalt"], "arcs")
    owners = arcs.loc[arcs.target_stage == "cathode_pool", "target_owner"].nunique()
    assert fams["per_owner"]["rows"]["cobalt"] == owners
    assert fams["per_owner"]["parameters"] == {"cap": 1.0, "cap.Korea": 0.5, "cap.Japan": 0.4}
    math_ = cli("math", str(path), cwd=tmp_path)
    assert math_.returncode == 0, math_.stderr
    assert r"\sum_{a \in A^{\mathrm{per\_owner}}_g} x_a \le \mathrm{cap}_{\mathrm{target\_owner}}" \
        in math_.stdout
    assert "rows: lithium 1, cobalt 1, nickel 1" in math_.stdout


def test_china_focal_makes_the_contract_caps_infeasible_and_the_error_names_them(tmp_path):
    body = BASE.replace("  Australia: [Australia]\n", "  China: [China]\n") + CONTRACT
    res = cli("run", str(write_scenario(tmp_path, body)), "--out", str(tmp_path / "o"),
              cwd=tmp_path)
    line = one_line_error(res)
    assert "Infeasible" in line and "kj_total" in line and "per_owner" in line
    assert not (tmp_path / "o").exists()


def test_a_stage_name_means_exactly_that_stage(networks):
    fields = member_fields(networks["lithium"], "nodes")
    def rows(where):
        fam = yaml_family("f", {"title": "t", "foreach": "nodes", "where": where,
                                "equation": "touched_out <= outflow", "allow_empty": True},
                          lambda *k: "s.yaml: constraints.f")
        return fam.count_rows(networks["lithium"])
    assert rows("stage == refining") == int((fields.stage == "refining").sum())
    assert rows("stage == refining_pool") == int((fields.stage == "refining_pool").sum())
    assert rows("focal_stage == refining") == rows("stage == refining") + rows(
        "stage == refining_pool")


def test_equations_expressions_and_indexed_parameters_from_a_file(tmp_path, networks, blocs):
    (tmp_path / "caps.csv").write_text("key,value\nKorea,0.5\nJapan,0.4\n")
    body = BASE + """\
constraints:
  split:
    title: Per owner, two equations
    foreach: arcs
    group_by: [target_owner]
    where: target_stage == cathode_pool
    expressions: {intake: sum(tonnes), capped: cap * intake}
    equations:
      - {where: "target_owner in [Korea, Japan]", equation: sum(touched) <= capped}
      - {where: "target_owner not in [Korea, Japan]", equation: sum(touched) <= intake}
    parameters:
      cap: {by: target_owner, file: caps.csv}
"""
    scenario = load_scenario(write_scenario(tmp_path, body))
    families, params, _ = scenario.user_families()
    assert params == {"split.cap.Korea": 0.5, "split.cap.Japan": 0.4}
    got = vulnerability(networks, FOCAL, PAIRS, families=families, parameters=params,
                        stage_contributions=False).vi
    twins = [f for f in load_extension(str(CONTRACT_RULES)).families if f.name == "per_owner"]
    want = vulnerability(networks, FOCAL, PAIRS, families=twins, stage_contributions=False).vi
    assert np.allclose(got.values, want.values, atol=1e-9, equal_nan=True)


def test_an_indexed_entry_sweeps_and_a_sweep_labels_families_by_title(tmp_path):
    body = BASE.replace("NCM-cobalt, NCM-nickel", "NCM-cobalt") + CONTRACT + """\
sweep:
  parameters.per_owner.cap.Korea: [0.5, 1.0]
  families.kj_total: [true, false]
"""
    res = cli("run", str(write_scenario(tmp_path, body)), "--out", str(tmp_path / "o"),
              "--quiet", "--workers", "1", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    with xr.open_dataset(tmp_path / "o" / "results.nc") as ds:
        assert ds["families.kj_total"].dtype == bool
        assert list(ds["parameters.per_owner.cap.Korea"].values) == [0.5, 0.5, 1.0, 1.0]
        assert "families.kj_total=on" in str(ds["variant_label"].values[0])
    alt = CONTRACT.split("  per_owner:")[0]
    body = BASE + alt + """\
sweep:
  constraints.kj_total:
    - {title: KJ at most a third, foreach: nodes, group_by: [], where: "owner in [Korea, Japan] and stage == cathode_pool", equation: "sum(touched_in) <= 0.33 * sum(inflow)"}
    - {title: KJ at most a half, foreach: nodes, group_by: [], where: "owner in [Korea, Japan] and stage == cathode_pool", equation: "sum(touched_in) <= 0.5 * sum(inflow)"}
"""
    res = cli("validate", str(write_scenario(tmp_path, body)), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    from chokepoint.runs.sweep import variants

    labels = [v.label for v in variants(load_scenario(tmp_path / "scenario.yaml"))]
    assert labels == ["constraints.kj_total=KJ at most a third",
                      "constraints.kj_total=KJ at most a half"]


def test_user_families_default_to_the_three_bound_cases(tmp_path):
    fam = yaml_family("f", {"title": "t", "foreach": "arcs", "equation": "touched <= tonnes"},
                      lambda *k: "s.yaml")
    assert sorted(c.value for c in fam.cases) == ["optimistic", "pessimistic_a",
                                                  "pessimistic_b"]
    twin = load_extension(str(CONTRACT_RULES)).families[0]
    assert "proportional" not in {c.value for c in twin.cases}


# -- mistakes: one line, naming file, line and key ------------------------------------------

ARC = "constraints: {c: {title: t, foreach: arcs, equation: 'touched <= tonnes'"


@pytest.mark.parametrize("body, pattern", [
    (ARC + ", where: 'source_owner == Chilee'}}",
     r"scenario.yaml:\d+: constraints.c.where: no owner 'Chilee' in the run's networks "
     r"\(did you mean 'Chile'\?\)"),
    (ARC + ", where: 'source == China_reff'}}",
     r"constraints.c.where: no node 'China_reff' .*\(did you mean 'China_ref'\?\)"),
    (ARC + ", where: 'material == cobalts'}}",
     r"constraints.c.where: unknown material 'cobalts' \(did you mean 'cobalt'\?\)"),
    (ARC + ", where: 'material == cobalt'}}",
     r"constraints.c.where: the run has no cobalt network"),
    (ARC + ", where: 'target_owner in bloc(us-fta-critical-minerls)'}}",
     r"constraints.c.where: unknown bloc 'us-fta-critical-minerls' \(did you mean 'us-fta-critical-minerals'"),
    (ARC + ", where: 'tonnes > lots'}}", r"constraints.c.where: tonnes > 'lots': 'lots' is not"),
    (ARC + ", where: 'touched > 5'}}", r"constraints.c.where: 'touched' is a variable"),
    (ARC + ", where: 'source_stage == refining and source_owner == Iceland'}}",
     r"constraints.c.where: no owner 'Iceland'"),
    (ARC + ", where: 'source_stage == mine and target_stage == product'}}",
     r"constraints.c: constraint family 'c' selects no row in any network of the run .*"
     r"allow_empty: true"),
    ("constraints: {c: {title: t, foreach: arcs, equation: 'sum(touched) <= 1'}}",
     r"constraints.c.equation: sum\(...\) adds over a group: give group_by"),
    ("constraints: {c: {title: t, foreach: arcs, group_by: [], equation: 'touched <= 1'}}",
     r"constraints.c.equation: touched is a term of one member: with group_by it stands inside"
     r" sum"),
    ("constraints: {c: {title: t, foreach: arcs, group_by: [target_owner], equation: "
     "'sum(touched) <= cap * sum(tonnes)', parameters: {cap: {by: source_owner, default: 1}}}}",
     r"constraints.c.equation: parameter cap is indexed by source_owner, which is no group_by"),
    ("constraints: {c: {title: t, foreach: arcs, group_by: [target_owner], equation: "
     "'sum(touched) <= cap * sum(tonnes)', parameters: {cap: {by: target_owner, "
     "values: {Korae: 0.5}, default: 1}}}}",
     r"constraints.c.parameters.cap.values.Korae: no owner 'Korae' .*did you mean 'Korea"),
    ("constraints: {c: {title: t, foreach: arcs, equation: 'touched == touched'}}",
     r"constraints.c.equation: its touched terms cancel"),
    ("constraints: {c: {title: t, foreach: arcs, equation: 'touched <= touched'}}",
     r"constraints.c.equation: its touched terms cancel"),
    ("constraints: {c: {title: t, foreach: arcs, equation: 'touched / 0 <= tonnes'}}",
     r"constraints.c.equation: divides by zero"),
    ("constraints: {c: {title: t, foreach: arcs, equation: 'touched <= tonnes / (s - s)', "
     "parameters: {s: 1}}}", r"constraints.c.equation: divides by zero"),
    ("constraints: {c: {title: t, foreach: arcs, equation: 'touched <= tonnes / focal_source'}}",
     r"constraints.c.equation: dividing by a focal term divides by zero"),
    ("constraints: {c: {title: t, foreach: arcs, equation: 'touched <= tonnes * touched', "
     "parameters: {touched: 1}}}",
     r"constraints.c.parameters.touched: parameter 'touched' has the name of a term"),
    ("constraints: {c: {title: t, foreach: arcs, equation: 'touched <= " + "(" * 40 + "tonnes"
     + ")" * 40 + "'}}", r"constraints.c.equation: the equation nests parentheses 40 deep"),
    ("constraints: {c: {title: t, foreach: arcs, equation: 'touched <= tonnes * s', "
     "parameters: {s: .nan}}}", r"constraints.c.parameters.s: Input should be a finite number"),
    ("constraints: {c: {title: t, foreach: arcs, equation: 'touched <= tonnes * s', "
     "parameters: {s: .inf}}}", r"constraints.c.parameters.s: Input should be a finite number"),
    ("constraints: {focal_origin: {title: t, foreach: arcs, equation: 'touched <= tonnes'}}",
     r"constraints.focal_origin: 'focal_origin' is the name of a core family"),
    ("constraints: {capé: {title: t, foreach: arcs, equation: 'touched <= tonnes'}}",
     r"constraints.capé: a constraint family's name is an ASCII identifier"),
    ("constraints: {a_b: {title: t, foreach: arcs, equation: 'touched <= tonnes * c', "
     "parameters: {c: 1}}, a: {title: t, foreach: arcs, equation: 'touched <= tonnes * b_c', "
     "parameters: {b_c: 1}}}", r"component 'a_b_c' collides with family a_b"),
    ("constraints: {c: {title: t, foreach: arcs, equation: 'touched <= e', expressions: "
     "{e: 'f', f: 'e'}}}", r"constraints.c.equation: expression 'e' refers to itself"),
    (ARC + ", where: 'source_stage == refinig'}}",
     r"unknown stage 'refinig' \(did you mean 'refining'"),
])
def test_mistakes_are_one_line_errors_before_any_solve(tmp_path, body, pattern):
    import re

    base = BASE.replace("NCM-lithium, NCM-cobalt, NCM-nickel", "NCM-lithium") \
        if "cobalt network" in pattern else BASE
    path = write_scenario(tmp_path, base + body + "\n")
    line = one_line_error(cli("validate", str(path), cwd=tmp_path))
    assert re.search(pattern, line), line


def test_allow_empty_accepts_a_family_with_no_row(tmp_path):
    body = BASE + ARC + ", where: 'source_stage == mine and target_stage == product', " \
        "allow_empty: true}}\n"
    res = cli("validate", str(write_scenario(tmp_path, body)), cwd=tmp_path)
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("how", ["set", "sweep", "sensitivity"])
def test_nan_and_infinite_parameters_are_errors_naming_the_key(tmp_path, how):
    body = BASE + "constraints: {c: {title: t, foreach: arcs, where: 'target_stage == " \
        "cathode_pool', equation: 'touched <= tonnes * s', parameters: {s: 0.5}}}\n"
    args = []
    if how == "set":
        args = ["--set", "parameters.c.s=nan"]
    elif how == "sweep":
        body += "sweep: {parameters.c.s: [0.5, .nan]}\n"
    else:
        body += ("sensitivity: {samples: 2, parameters: [{parameter: c.s, range: [0, .inf]}]}\n")
    line = one_line_error(cli("validate", str(write_scenario(tmp_path, body)), *args,
                              cwd=tmp_path))
    assert "finite" in line and ("c.s" in line or "range" in line), line


def test_a_zero_parameter_divisor_is_an_error_naming_the_family_and_row(tmp_path):
    body = BASE + "constraints: {c: {title: t, foreach: arcs, where: 'target_stage == " \
        "cathode_pool', equation: 'touched / s <= tonnes', parameters: {s: 1}}}\n"
    path = write_scenario(tmp_path, body)
    line = one_line_error(cli("run", str(path), "--set", "parameters.c.s=0", "--out",
                              str(tmp_path / "o"), cwd=tmp_path))
    assert "constraint family c" in line and "divides by zero" in line, line


def test_a_python_familys_nan_default_is_refused(tmp_path):
    (tmp_path / "rules.py").write_text(
        "import pyomo.environ as pyo\nimport chokepoint\n"
        "@chokepoint.constraint_family('t', parameters={'s': float('nan')})\n"
        "def f(m, s):\n    'x'\n    return pyo.Constraint(expr=m.touched[next(iter(m.arcs))] <= s)\n")
    body = BASE + "extensions: [rules.py]\n"
    line = one_line_error(cli("validate", str(write_scenario(tmp_path, body)), cwd=tmp_path))
    assert "rules.py" in line and "parameter s" in line and "finite" in line, line




def test_a_python_family_with_no_row_anywhere_is_an_error_unless_allowed(tmp_path):
    rule = ("import pyomo.environ as pyo\nimport chokepoint\n"
            "@chokepoint.constraint_family('t'{extra})\n"
            "def nothing(m):\n    'x'\n"
            "    arcs = [a for a in m.arcs if m.owner[a[0]] == 'Atlantis']\n"
            "    return pyo.Constraint(arcs, rule=lambda m, s, t: m.touched[s, t] <= 0)\n")
    (tmp_path / "rules.py").write_text(rule.format(extra=""))
    path = write_scenario(tmp_path, BASE + "extensions: [rules.py]\n")
    line = one_line_error(cli("validate", str(path), cwd=tmp_path))
    assert "constraint family nothing" in line and "states no row" in line, line
    (tmp_path / "rules.py").write_text(rule.format(extra=", allow_empty=True"))
    res = cli("validate", str(path), cwd=tmp_path)
    assert res.returncode == 0, res.stderr


def test_a_task_carries_the_families_blocs_and_parameter_files(tmp_path):
    """A worker that cannot see the scenario's folder still states the YAML families: the
    blocs file and an indexed parameter's CSV travel with the task."""
    from chokepoint.runs.sweep import make_tasks, run_task, task_inputs

    study = tmp_path / "study"
    study.mkdir()
    (study / "caps.csv").write_text("Korea,0.5\nJapan,0.4\n")
    (study / "my_blocs.yaml").write_text("kj: [Korea, Japan]\n")
    body = BASE + "blocs_file: my_blocs.yaml\n" + """\
constraints:
  per_owner:
    title: Cathode intake per owner
    foreach: arcs
    group_by: [target_owner]
    where: target_stage == cathode_pool and target_owner in bloc(kj)
    equation: sum(touched) <= cap * sum(tonnes)
    parameters:
      cap: {by: target_owner, file: caps.csv}
sweep: {parameters.per_owner.cap.Korea: [0.1, 1.0]}
"""
    scenario = load_scenario(write_scenario(study, body))
    _, _, tasks = make_tasks(scenario, scenario.blocs())
    inputs = task_inputs(tasks)
    here = [run_task(t, inputs)[0] for t in tasks]
    study.rename(tmp_path / "gone")  # the worker's view: no such folder
    there = [run_task(t, inputs)[0] for t in tasks]
    for a, b in zip(here, there):
        assert a.equals(b)
    assert not here[0]["vi"].equals(here[1]["vi"])  # the swept entry reaches the rows

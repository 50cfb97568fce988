"""Scenarios: sweeps, blocs, counterfactual edits, sensitivity, rankings, band narrowing and
execution (in process, process pool, Dask), on the 2020 networks built from data/."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import chokepoint.runs.sweep as sweep
from chokepoint.api import prepare, run
from chokepoint.cases import Case
from chokepoint.focal import FocalSet
from chokepoint.lp import VulnerabilityLP
from chokepoint.runs.scenario import load_scenario
from chokepoint.bench.synthetic import synthetic_network

from conftest import write_scenario
from test_cli import _expect_error

BASE = """\
name: s
network: {year: 2020}
pairs: [LFP-lithium]
stage_contributions: false
focal:
  China: [China]
"""

SWEEP = BASE + """\
sweep:
  edits:
    - []
    - [{kind: move_production, from: China, to: [Korea, Japan], stage: cathode, share: 0.5}]
  solver: [highspy, appsi_highs]
"""


def test_china_mining_and_refining_only_lfp_li_proportional(tmp_path):
    """The issue's stage-restricted figure: 71.0%."""
    body = BASE.replace("  China: [China]", "  China m+r: {bloc: china-mining-refining}")
    res = run(write_scenario(tmp_path, body), write_files=False)
    v = res.dataset.vi.sel(focal="China m+r", chemistry="LFP", material="lithium",
                           case="proportional")
    assert round(float(v) * 100, 1) == 71.0


def test_sweep_is_a_labelled_cartesian_product(tmp_path):
    res = run(write_scenario(tmp_path, SWEEP), out=tmp_path / "out", workers=1)
    ds = xr.open_dataset(tmp_path / "out" / "results.nc", engine="h5netcdf")
    assert ds.sizes["variant"] == 4
    assert list(ds["solver"].values) == ["highspy", "appsi_highs"] * 2
    assert ds["edits"].values[0] == "[]" and "move_production" in ds["edits"].values[3]
    vi = ds.vi.sel(focal="China", chemistry="LFP", material="lithium")
    # the solver does not change an index; the edit does
    np.testing.assert_allclose(vi.isel(variant=0), vi.isel(variant=1), atol=1e-9)
    assert float(vi.isel(variant=2).sel(case="proportional")) < float(
        vi.isel(variant=0).sel(case="proportional"))
    csv = pd.read_csv(tmp_path / "out" / "vulnerability.csv")
    assert sorted(csv["variant"].unique()) == [0, 1, 2, 3]
    assert "variant 3: edits=[{" in res.table and "solver=appsi_highs\nChina" in res.table
    assert not any(p.name.endswith(".parts") for p in tmp_path.iterdir())


def test_a_sweep_over_focal_sets_names_its_column_apart_from_the_focal_column(tmp_path):
    """`focal` already labels every row, so the swept value goes to `sweep.focal`; each
    variant's own focal sets are checked for the warnings."""
    body = BASE + ("sweep: {focal: [{China: [China]}, {Iceland: [Iceland], "
                   "SAL: {bloc: south-american-lithium}}]}\n")
    res = run(write_scenario(tmp_path, body), out=tmp_path / "out", workers=1)
    csv = pd.read_csv(tmp_path / "out" / "vulnerability.csv")
    assert list(csv.columns[:3]) == ["variant", "sweep.focal", "focal"]
    assert set(csv.loc[csv["variant"] == 1, "focal"]) == {"Iceland", "SAL"}
    assert csv.loc[csv["variant"] == 1, "sweep.focal"].str.contains("south-american").all()
    ds = xr.open_dataset(tmp_path / "out" / "results.nc", engine="h5netcdf")
    assert ds["sweep.focal"].dims == ("variant",) and list(ds.focal.values) == [
        "China", "Iceland", "SAL"]
    assert np.isnan(float(ds.vi.sel(variant=0, focal="SAL", chemistry="LFP",
                                    material="lithium", case="proportional")))
    notes = res.dataset.attrs["notes"]
    assert "Iceland owns no node of the lithium network" in notes
    assert "variant 1: SAL: LFP-Li (A 99%)" in notes


def test_explicit_variants_with_labels(tmp_path):
    body = BASE + """\
variants:
  - {label: base}
  - {label: no Chinese refining, edits: [{kind: scale_production, country: China,
                                          stage: refining, factor: 0}]}
"""
    ds = run(write_scenario(tmp_path, body), write_files=False, workers=1).dataset
    assert list(ds["variant_label"].values) == ["base", "no Chinese refining"]


def test_edits_are_listed_in_attrs(tmp_path):
    body = BASE + """\
edits:
  - {kind: recycling, owner: Chile, into: China, material: lithium, tonnes: 1000}
"""
    ds = run(write_scenario(tmp_path, body), write_files=False).dataset
    assert "recycling(owner=Chile, into=China, material=lithium, tonnes=1000.0)" in ds.attrs[
        "edits"]


def test_process_pool_and_dask_give_identical_results(tmp_path):
    pytest.importorskip("dask.distributed")
    scen = write_scenario(tmp_path, SWEEP)
    run(scen, out=tmp_path / "pool", workers=2)
    run(scen, out=tmp_path / "dask", dask="local")
    run(scen, out=tmp_path / "inproc", workers=1)
    a, b, c = (xr.open_dataset(tmp_path / d / "results.nc", engine="h5netcdf")
               for d in ("pool", "dask", "inproc"))
    xr.testing.assert_identical(a, b)
    xr.testing.assert_identical(a, c)
    assert (tmp_path / "pool" / "results.nc").read_bytes() == \
        (tmp_path / "dask" / "results.nc").read_bytes()


def test_changed_sweep_does_not_reuse_parts(tmp_path):
    from chokepoint.runs.parts import PartStore, fingerprint

    scen = load_scenario(write_scenario(tmp_path, SWEEP))
    _, _, tasks = sweep.make_tasks(scen, scen.blocs())
    store = PartStore(tmp_path / "out", fingerprint(tasks, []))
    store.save(tasks[0].key, sweep.run_task(tasks[0], sweep.task_inputs(tasks[:1])))
    assert PartStore(tmp_path / "out", fingerprint(tasks, [])).load(tasks[0].key) is not None
    other = load_scenario(write_scenario(tmp_path, SWEEP.replace("share: 0.5", "share: 0.4")))
    _, _, tasks2 = sweep.make_tasks(other, other.blocs())
    assert PartStore(tmp_path / "out", fingerprint(tasks2, [])).load(tasks2[0].key) is None


SENS = """\
name: sens
network: {year: 2020}
pairs: [NCM-cobalt]
stage_contributions: false
focal:
  China: [China]
sensitivity:
  samples: 12
  seed: 7
  parameters:
    - {material: cobalt, range: [0.5, 1.5]}
"""


def test_sensitivity_samples_quantiles_and_central_point(tmp_path):
    scen = write_scenario(tmp_path, SENS)
    res = run(scen, out=tmp_path / "out", workers=1)
    ds = res.dataset
    assert ds.sizes["sample"] == 13  # central + 12 drawn
    codes = [c for c in ds.coords if c.startswith("factor_code_")]
    assert len(codes) == 6 and all(float(ds[c][0]) == 1.0 for c in codes)
    drawn = np.array([ds[c].values[1:] for c in codes])
    assert drawn.min() >= 0.5 and drawn.max() <= 1.5 and drawn.std() > 0.1
    base = run(write_scenario(tmp_path, SENS.split("sensitivity:")[0], "base.yaml"),
               write_files=False).dataset
    # the central sample reproduces the base indices exactly
    assert (ds.vi.sel(sample=0) == base.vi).all()
    q = ds.vi_quantile.sel(focal="China", chemistry="NCM", material="cobalt")
    assert (q.diff("quantile") >= 0).all()
    summary = pd.read_csv(tmp_path / "out" / "sensitivity_summary.csv")
    assert set(summary["quantile"]) == {0.05, 0.5, 0.95} and len(summary) == 12


def test_seeded_sensitivity_is_bit_for_bit(tmp_path):
    scen = write_scenario(tmp_path, SENS)
    a = run(scen, write_files=False, workers=1).dataset
    b = run(scen, write_files=False, workers=2).dataset
    xr.testing.assert_identical(a, b)
    other = run(write_scenario(tmp_path, SENS.replace("seed: 7", "seed: 8"), "o.yaml"),
                write_files=False, workers=1).dataset
    assert not np.array_equal(a["factor_code_260500"].values, other["factor_code_260500"].values)


def test_a_drawn_sample_of_a_swept_variant_is_the_run_of_its_own_edits(tmp_path):
    """In every variant of a sweep each sample rebuilds its networks from its factors: sample 3
    of the variant that moves cathode output is a plain run of that move and the sample's
    fractions as edits."""
    move = {"kind": "move_production", "from": "China", "to": ["Korea", "Japan"],
            "stage": "cathode", "share": 0.5}
    body = SENS.replace("sensitivity:", f"sweep: {{edits: [[], [{json.dumps(move)}]]}}\n"
                                        "sensitivity:")
    ds = run(write_scenario(tmp_path, body), write_files=False, workers=1).dataset
    codes = [c for c in ds.coords if c.startswith("factor_code_")]
    edits = [move] + [{"kind": "set_fraction", "code": c.removeprefix("factor_code_"),
                       "factor": float(ds[c].sel(sample=3))} for c in codes]
    assert any(e.get("factor") != 1 for e in edits[1:])
    plain = run(write_scenario(tmp_path, SENS.split("sensitivity:")[0] + "edits: "
                               + json.dumps(edits) + "\n", "plain.yaml"),
                write_files=False).dataset.vi
    drawn = ds.vi.sel(variant=1, sample=3).transpose(*plain.dims)
    np.testing.assert_allclose(drawn.values, plain.values, rtol=0, atol=1e-9)
    central = ds.vi.sel(variant=1, sample=0).transpose(*plain.dims)
    assert np.abs(central.values - plain.values).max() > 1e-4  # the fractions matter here


# -- blocs --------------------------------------------------------------------------------


def test_blocs_are_usable_by_name(tmp_path):
    body = BASE.replace("  China: [China]", "\n".join(
        f"  {n}: {{bloc: {n}}}" for n in ("south-american-lithium", "us-fta-critical-minerals",
                                          "eu27-uk-norway", "china-russia",
                                          "china-owned-ni-co")))
    _, _, focal = prepare(write_scenario(tmp_path, body))
    sizes = {fs.label: len(fs.members) for fs in focal}
    assert sizes == {"south-american-lithium": 5, "us-fta-critical-minerals": 10,
                     "eu27-uk-norway": 29, "china-russia": 2, "china-owned-ni-co": 4}


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), members=st.sets(st.integers(0, 5), min_size=2, max_size=4),
       stages=st.integers(4, 6))
def test_bloc_is_never_below_any_member(seed, members, stages):
    net = synthetic_network(6, stages, seed=seed, density=0.6)
    names = [f"Country {i:03d}" for i in sorted(members)]
    lp = VulnerabilityLP(net)
    for case in Case:
        bloc = lp.solve(FocalSet.of("b", names).nodes(net), "NCM", case)
        for n in names:
            alone = lp.solve(FocalSet.of(n, [n]).nodes(net), "NCM", case)
            assert bloc >= alone - 1e-6, (case, n)


# -- rankings and band narrowing ---------------------------------------------------------


def test_ranking_covers_every_country_pair_and_case():
    from chokepoint.runs.ranking import rank

    df = rank(2020)
    assert len(df) >= 800 and set(df["case"]) == {c.value for c in Case}
    top = df[(df["chemistry"] == "LFP") & (df["case"] == "proportional")].iloc[0]
    assert top["focal"] == "China" and top["rank"] == 1
    assert (df.groupby(["chemistry", "material", "case"])["rank"].min() == 1).all()


def test_rank_command_writes_ranked_table(tmp_path):
    from test_cli import run_cli

    r = run_cli("rank", "--year", "2020", "--blocs", "--top", "3", "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    assert "LFP-Li, countries ranked by the proportional index" in r.stdout
    assert "blocs ranked" in r.stdout
    df = pd.read_csv(tmp_path / "ranking.csv")
    assert set(df["kind"]) == {"country", "bloc"}
    assert (tmp_path / "ranking_LFP-lithium.png").stat().st_size > 5000


def test_band_narrowing_pinning_the_top_split_narrows_by_what_it_reports(tmp_path):
    from chokepoint.runs.narrow import band_drivers

    scen, nets, focal = prepare("scenarios/paper_2020.yaml")
    net = nets["cobalt"]
    china = focal[0].nodes(net)
    table = band_drivers(net, china, "NCM")
    top = table.iloc[0]
    assert top["kind"] == "split" and top["narrows_by"] > 0.01
    lp = VulnerabilityLP(net, pinning=True)
    lp.pin([top["node"]])
    supply = net.product_supply("NCM")
    band = (lp.solve(china, "NCM", Case.PESSIMISTIC_A)
            - lp.solve(china, "NCM", Case.OPTIMISTIC)) / supply
    base = table.attrs["base_pessimistic_a"] - table.attrs["base_optimistic"]
    assert band == pytest.approx(base - top["narrows_by"], abs=1e-9)


# -- schema errors ------------------------------------------------------------------------


@pytest.mark.parametrize("extra, pattern", [
    ("edits: [{kind: recyclng, owner: Chile, material: lithium, tonnes: 3}]",
     r"scenario.yaml:\d+: edits\[0\]: unknown edit kind 'recyclng' \(did you mean "
     r"'recycling'\?\)"),
    ("edits: [{kind: recycling, owner: Chile, material: lithium, tones: 3}]",
     r"edits\[0\].tones: unknown key 'tones' \(did you mean 'tonnes'\?\)"),
    ("edits: [{kind: recycling, owner: Chlie, material: lithium, tonnes: 3}]",
     r"edits\[0\]: unknown country 'Chlie' \(did you mean 'Chile'\?\)"),
    ("edits: [{kind: set_fraction, code: '282201', factor: 2}]",
     r"scenario.yaml:\d+: edits\[0\]: unknown HS code '282201' \(did you mean '\d{6}'\?\)"),
    ("sweep: {solvr: [highspy]}", r"'solvr' cannot be swept \(did you mean 'solver'\?\)"),
    ("sweep: {network.year: [2020, 1850]}", r"sweep: variant \{'network.year': 1850\}"),
    ("solver: glkp", r"scenario.yaml:\d+: solver: unknown solver 'glkp' \(did you mean "
                     r"'glpk'\?\)"),
    ("sensitivity: {samples: 5, parameters: [{material: cobalt, range: [1.2, 1.5]}]}",
     r"sensitivity.parameters\[0\]: .*0 < low <= 1 <= high"),
    ("sensitivity: {samples: 5, method: sobol, parameters: [{code: '282200', range: [0.5, 1]}]}",
     r"sensitivity.method: Input should be 'lhs', 'mc' or 'grid'"),
    ("blocs_file: nowhere.yaml", r"blocs_file: blocs file .* does not exist"),
    ("sweep: {edits: [[], [{kind: scale_trade, exporter: Chile, importer: Narnia, factor: 0}]]}",
     r"scenario.yaml:\d+: sweep: variant edits=.*: edits\[0\]: unknown country 'Narnia'"),
])
def test_schema_errors_are_one_line(tmp_path, extra, pattern):
    _expect_error(tmp_path, BASE + extra + "\n", pattern)


def test_unknown_bloc_suggests(tmp_path):
    body = BASE.replace("  China: [China]", "  SA: {bloc: south-american-lithum}")
    _expect_error(tmp_path, body, r"focal.SA.bloc: unknown bloc 'south-american-lithum' "
                                  r"\(did you mean 'south-american-lithium'\?\)")


def test_edits_need_networks_from_data(tmp_path, tiny_flows):
    from conftest import TINY_SCENARIO

    body = TINY_SCENARIO + "edits: [{kind: scale_trade, exporter: Australia, importer: China, " \
                           "factor: 0}]\n"
    _expect_error(tmp_path, body, r"edits: edits change the statistics: they need networks "
                                  r"built from data/")

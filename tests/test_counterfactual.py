"""Counterfactual edits on tiny statistics, with answers checked by hand.

Tiny lithium statistics (contained fractions 1, so tonnes are contained tonnes):
Australia mines 100 t, all exported to China; Chile mines 50 t and refines 30 t of it.
China refines 120 t (20 t of unknown origin), exports 50 t to Korea and keeps 70 t. China's LFP
cathode needs 60 t (10 t surplus -> NBCP), Korea's 50 t. LFP supply: 110 t.
"""

from __future__ import annotations

import pandas as pd
import pytest
from pydantic import TypeAdapter

from chokepoint.cases import Case
from chokepoint.statistics.counterfactual import Edit, EditError, apply_edits
from chokepoint.errors import ChokepointError
from chokepoint.focal import FocalSet
from chokepoint.statistics.inputs import Inputs
from chokepoint.lp import VulnerabilityLP
from chokepoint.statistics.mfa import build_network

O, P = Case.OPTIMISTIC, Case.PROPORTIONAL


@pytest.fixture
def inputs(tmp_path) -> Inputs:
    production = {
        "year": 2020,
        "mine": {"lithium": {"Australia": 100.0, "Chile": 50.0}},
        "refining": {"lithium": {"China": 120.0, "Chile": 30.0}},
        "cathode": {"countries": ["China", "Korea, Republic of"], "LFP": [600.0, 500.0],
                    "market_share": {}},
    }
    materials = {
        "trade_codes": {"lithium": {"raw": {"111111": {"fraction": 1.0}},
                                    "refined": {"222222": {"fraction": 1.0}}}},
        "cathode_mass_fractions": {"LFP": {"lithium": 0.1}},
    }
    lists = {"importers": ["China", "Chile", "Korea, Republic of", "Australia"]}
    out = Inputs(2020, tmp_path, production, materials, lists)
    out.__dict__["trade_table"] = pd.DataFrame(
        [(2020, "111111", "China", "Australia", 100.0, "import", False),
         (2020, "222222", "Korea, Republic of", "China", 50.0, "import", False)],
        columns=["year", "hs_code", "importer", "exporter", "tonnes", "side", "mirror"])
    return out


def edits(*items):
    return [TypeAdapter(Edit).validate_python(i) for i in items]


def vi(inputs, members, case, stages=("mining", "refining", "cathode", "recycling")):
    net = build_network("lithium", inputs)
    nodes = FocalSet.of("f", members, stages).nodes(net)
    return VulnerabilityLP(net).solve(nodes, "LFP", case) / net.product_supply("LFP")


def test_base_case_by_hand(inputs):
    # Optimistic: Australia's 100 t leave China's refinery; 10 t can go to NBCP, 90 t reach LFP.
    assert vi(inputs, ["Australia"], O) == pytest.approx(90 / 110)


def test_non_focal_recycler_lowers_optimistic_by_its_share(inputs):
    # 30 t recovered by Chile, refined in China: China's surplus to NBCP grows by 30 t, so
    # 30 t more of Australia's material can leave the chain: (90 - 30) / 110.
    edited = apply_edits(inputs, edits({"kind": "recycling", "owner": "Chile", "into": "China",
                                        "material": "lithium", "tonnes": 30}))
    assert vi(edited, ["Australia"], O) == pytest.approx(vi(inputs, ["Australia"], O) - 30 / 110)
    net = build_network("lithium", edited)
    assert net.arcs.set_index(["source", "target"]).loc[
        ("Chile_recyc", "China_ref_poss"), "tonnes"] == pytest.approx(30)
    assert inputs.production["refining"]["lithium"]["China"] == 120  # original untouched


def test_focal_recycler_is_counted(inputs):
    """A recycler owned by a focal country is touched like its mines."""
    edited = apply_edits(inputs, edits({"kind": "recycling", "owner": "Chile", "into": "China",
                                        "material": "lithium", "tonnes": 30}))
    assert vi(edited, ["Chile"], P) > 0
    assert vi(edited, ["Chile"], P, stages=("mining",)) == 0


def test_moving_all_cathode_output_away_removes_cathode_contribution(inputs):
    cathode_only = ("cathode",)
    assert vi(inputs, ["China"], P, cathode_only) == pytest.approx(60 / 110)
    moved = apply_edits(inputs, edits({"kind": "move_production", "from": "China",
                                       "to": ["Korea"], "stage": "cathode", "share": 1.0}))
    assert vi(moved, ["China"], P, cathode_only) == 0
    assert build_network("lithium", moved).product_supply("LFP") == pytest.approx(110)


def test_move_pro_rata_to_existing_output(inputs):
    moved = apply_edits(inputs, edits({"kind": "move_production", "from": "China",
                                       "to": ["Korea", "Japan"], "stage": "cathode",
                                       "share": 0.5}))
    cp = moved.production["cathode"]
    assert dict(zip(cp["countries"], cp["LFP"])) == {
        "China": 300.0, "Korea, Republic of": 800.0, "Japan": 0.0}


def test_scale_trade_and_production(inputs):
    no_link = apply_edits(inputs, edits({"kind": "scale_trade", "exporter": "Australia",
                                         "importer": "China", "factor": 0}))
    # Australia's ore now stays home (Australia does not refine): nothing reaches LFP.
    assert vi(no_link, ["Australia"], P) == 0
    halved = apply_edits(inputs, edits({"kind": "scale_production", "country": "China",
                                        "stage": "refining", "factor": 0.5}))
    assert halved.refining("lithium")["China"] == 60


@pytest.mark.parametrize("factor", [0, 0.5, 1.5, 3])
def test_scale_trade_by_any_factor_on_tonnes_stored_as_integers(inputs, factor):
    """The shipped trade table stores whole tonnes (int64); a fractional result must not
    fail to fit (pandas 3 refuses floats in an int64 column)."""
    table = inputs.trade_table.astype({"tonnes": "int64"})
    inputs.__dict__["trade_table"] = table
    scaled = apply_edits(inputs, edits({"kind": "scale_trade", "exporter": "Australia",
                                        "importer": "China", "factor": factor}))
    got = scaled.trade_table.set_index(["exporter", "importer"])["tonnes"]
    assert got[("Australia", "China")] == pytest.approx(100 * factor)
    assert got[("China", "Korea, Republic of")] == 50
    assert table["tonnes"].tolist() == [100, 50]  # the original untouched
    net = build_network("lithium", scaled)
    arcs = net.arcs.set_index(["source", "target"])["tonnes"]
    assert arcs.get(("Australia_mine", "China_ref_poss"), 0) == pytest.approx(100 * factor)


@pytest.mark.parametrize("edit", [
    {"kind": "scale_trade", "exporter": "Australia", "importer": "China", "factor": "nan"},
    {"kind": "scale_production", "country": "China", "stage": "refining", "factor": "inf"},
    {"kind": "recycling", "owner": "China", "material": "lithium", "tonnes": float("inf")},
    {"kind": "move_production", "from": "China", "to": ["Korea"], "stage": "cathode",
     "share": float("nan")},
    {"kind": "set_fraction", "code": "111111", "factor": float("inf")},
])
def test_an_edit_number_that_is_not_finite_is_refused(edit):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="finite number"):
        edits(edit)


def test_set_fraction_scales_contained_tonnes(inputs):
    half = apply_edits(inputs, edits({"kind": "set_fraction", "code": "111111", "factor": 0.5}))
    assert half.trade("lithium", "raw", "paper")["tonnes"].sum() == pytest.approx(50)
    mass = apply_edits(inputs, edits({"kind": "set_fraction", "chemistry": "LFP",
                                      "material": "lithium", "value": 0.2}))
    assert build_network("lithium", mass).product_supply("LFP") == pytest.approx(220)


@pytest.mark.parametrize("edit, message", [
    ({"kind": "recycling", "owner": "Chile", "into": "Korea", "material": "lithium",
      "tonnes": 5}, "Korea, Republic of does not refine lithium"),
    ({"kind": "scale_trade", "exporter": "Chile", "importer": "China", "factor": 2},
     "no trade from Chile to China"),
    ({"kind": "set_fraction", "code": "111112", "factor": 2}, "did you mean '111111'"),
    ({"kind": "scale_production", "country": "Chlie", "stage": "mining", "factor": 2},
     "did you mean"),
    ({"kind": "scale_production", "country": "Korea", "stage": "mining", "factor": 2},
     "has no mining output"),
])
def test_edit_errors_name_the_edit(inputs, edit, message):
    with pytest.raises(ChokepointError, match=message) as e:
        apply_edits(inputs, edits(edit))
    assert "edits[0]" in str(e.value)
    assert isinstance(e.value, (EditError, ChokepointError))

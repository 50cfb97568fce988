"""Synthetic supply chains: seeded, balanced, any number of stages from 4 to 7."""

from __future__ import annotations

import pytest

from chokepoint.bench.baseline import baseline_vi
from chokepoint.cases import Case
from chokepoint.focal import FocalSet
from chokepoint.lp import VulnerabilityLP
from chokepoint.network import Stage
from chokepoint.bench.synthetic import synthetic_network


@pytest.mark.parametrize("stages", [4, 5, 6, 7])
def test_balanced_and_staged(stages):
    net = synthetic_network(12, stages, seed=3)
    present = set(net.nodes["stage"])
    expected = {Stage.PRECURSOR: 4, Stage.CELL: 5, Stage.PACK: 6, Stage.VEHICLE: 7}
    for stage, first in expected.items():
        assert (stage in present) == (stages >= first)
    assert set(net.products) == {"NCM", "LFP"}


def test_seeded():
    assert synthetic_network(10, 7, seed=5).arcs.equals(synthetic_network(10, 7, seed=5).arcs)
    assert not synthetic_network(10, 7, seed=5).arcs.equals(synthetic_network(10, 7, seed=6).arcs)


def test_arc_count_grows_with_countries():
    small, large = synthetic_network(10, 7, seed=1), synthetic_network(20, 7, seed=1)
    assert len(large.arcs) > 3 * len(small.arcs)


def test_rejects_stage_count():
    with pytest.raises(ValueError):
        synthetic_network(5, 8)


@pytest.mark.parametrize("stages", [4, 7])
@pytest.mark.parametrize("focal_stages", [("mining",), ("cell", "pack"), None])
def test_lp_equals_baselines_on_long_chains(stages, focal_stages):
    net = synthetic_network(8, stages, seed=2)
    fs = FocalSet.of("f", ["Country 001", "Country 004"],
                     focal_stages or ("mining", "refining", "precursor", "cathode", "cell",
                                      "pack", "vehicle"))
    nodes = fs.nodes(net)
    lp = VulnerabilityLP(net)
    supply = net.product_supply("NCM")
    for case in Case:
        got = lp.solve(nodes, "NCM", case) / supply
        assert got == pytest.approx(baseline_vi(net, nodes, "NCM", case), abs=1e-7), case

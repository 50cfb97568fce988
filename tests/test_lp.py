"""The LP on the tiny network, each case checked by hand (see conftest.TINY_ARCS)."""

from __future__ import annotations

import pyomo.environ as pyo
import pytest

from chokepoint.cases import Case
from chokepoint.errors import SolverError
from chokepoint.focal import FocalSet
from chokepoint.lp import FAMILIES, SYMBOLS, VulnerabilityLP, build_model

P, O, A, B = Case.PROPORTIONAL, Case.OPTIMISTIC, Case.PESSIMISTIC_A, Case.PESSIMISTIC_B


def vi(net, keys, case, stages=("mining", "refining", "cathode"), solver="highspy"):
    nodes = FocalSet.of("f", keys, stages).nodes(net)
    return VulnerabilityLP(net, solver).solve(nodes, "LFP", case) / net.product_supply("LFP")


@pytest.mark.parametrize(
    "case, expected",
    [
        # Australia's 60 t are 60% of China's refinery: proportional passes 60% everywhere,
        # including to the 25 t of unknown origin entering Korea: (30 + 0.6*45) / 95.
        (P, 57 / 95),
        # Optimistic sends touched refined Li to Korea, where 30 t go to NBCP: (10 + 20) / 95.
        (O, 30 / 95),
        # Pessimistic A sends it to Japan first (50 t) and 10 t to Korea: 60 / 95.
        (A, 60 / 95),
        # Pessimistic B adds the 25 t of TFCR (cap min(25, P_F = 60)): (50 + 35) / 95.
        (B, 85 / 95),
    ],
)
def test_miner_focal(tiny, case, expected):
    assert vi(tiny, ["AUS"], case) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("case, expected", [(P, 1.0), (O, 70 / 95), (A, 1.0), (B, 1.0)])
def test_refiner_focal(tiny, case, expected):
    assert vi(tiny, ["CHN"], case) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("case", list(Case))
def test_cathode_maker_focal_counts_its_own_output(tiny, case):
    assert vi(tiny, ["KOR"], case) == pytest.approx(45 / 95, abs=1e-9)


def test_stage_restriction(tiny):
    # China only mines in no network here; counted at mining only it touches nothing.
    assert vi(tiny, ["CHN"], P, stages=("mining",)) == 0.0
    assert vi(tiny, ["CHN"], O, stages=("refining",)) == pytest.approx(70 / 95)


def test_pessimistic_b_cap_binds(tiny):
    # Korea counted at cathode only, into LFP: P_F = 45 t; the TFCR arc into Korea is
    # irrelevant (Korea's output is all touched anyway) and Japan has no unknown inflow.
    lp = VulnerabilityLP(tiny)
    nodes = FocalSet.of("k", ["KOR"], ["cathode"]).nodes(tiny)
    lp.solve(nodes, "LFP", B)
    assert lp.release_cap() == pytest.approx(45.0)


def test_resolving_in_any_order_gives_the_same_answers(tiny):
    """The persistent model must not remember an earlier focal set, product or case."""
    lp = VulnerabilityLP(tiny)
    sets = {k: FocalSet.of(k, [k]).nodes(tiny) for k in ["AUS", "CHN", "KOR", "CHL"]}
    fresh = {(k, c): VulnerabilityLP(tiny).solve(n, "LFP", c) for k, n in sets.items()
             for c in Case}
    for c in [B, P, A, O, P, B, O]:
        for k in ["KOR", "AUS", "CHL", "CHN", "AUS"]:
            assert lp.solve(sets[k], "LFP", c) == pytest.approx(fresh[k, c], abs=1e-9)


def test_every_family_documents_its_equation():
    for fam in FAMILIES.values():
        assert "\\" in fam.equation or "=" in fam.equation, fam.name
        assert fam.title and fam.cases and fam.description
    for sym in SYMBOLS.values():
        assert sym.title and sym.description and sym.unit


def test_model_components_carry_their_docs(tiny):
    m = build_model(tiny)
    assert m.touched.doc == SYMBOLS["touched"].title
    assert m.focal_origin.doc.startswith("Focal origin: x_a")


def test_unknown_solver_suggests(tiny):
    with pytest.raises(SolverError, match=r"unknown solver 'glkp' \(did you mean 'glpk'\?\)"):
        VulnerabilityLP(tiny, "glkp")


def test_generic_solver_path_agrees(tiny):
    """Any Pyomo LP solver can be named; HiGHS through the non-persistent path must agree."""
    if not pyo.SolverFactory("appsi_highs").available(exception_flag=False):
        pytest.skip("HiGHS is not available")
    for case in Case:
        expected = vi(tiny, ["AUS"], case, solver="highspy")
        for solver in ("appsi_highs", "highs"):
            assert vi(tiny, ["AUS"], case, solver=solver) == pytest.approx(expected, abs=1e-9)


@pytest.fixture
def impossible_family():
    """A user rule, in every case, that no flow can meet: 10^6 t of touched Japanese LFP."""
    from chokepoint.lp import constraint_family

    @constraint_family("Impossible demand")
    def impossible(m):
        r"""x_{\mathrm{JPN} \to \mathrm{LFP}} \ge 10^6
        Test rule."""
        return pyo.Constraint(expr=m.touched["Japan_cath_poss", "LFP"] >= 1e6)

    yield
    FAMILIES.pop("impossible", None)


@pytest.mark.parametrize("solver, status", [("highspy", "Infeasible"),
                                            ("appsi_highs", "infeasible")])
def test_non_optimal_status_is_reported(tiny, impossible_family, solver, status):
    """A user constraint that makes the LP infeasible surfaces the solver's status."""
    lp = VulnerabilityLP(tiny, solver)
    nodes = FocalSet.of("c", ["CHN"]).nodes(tiny)
    with pytest.raises(SolverError, match=rf"solver '{solver}' returned status {status}"):
        lp.solve(nodes, "LFP", A)


def test_every_model_component_is_documented(tiny):
    m = build_model(tiny)
    for c in m.component_objects((pyo.Set, pyo.Param, pyo.Var), descend_into=False):
        assert c.local_name in SYMBOLS, f"{c.local_name} is not declared in lp.SYMBOLS"
    for c in m.component_objects(pyo.Constraint, descend_into=False):
        assert c.local_name in FAMILIES, f"{c.local_name} is not a registered family"


def test_readme_math_is_generated_from_the_model():
    from pathlib import Path

    from chokepoint.docs import math_markdown

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert math_markdown() in readme, "README is stale: paste the output of `chokepoint math`"


def test_user_family_is_built_and_switched(tiny):
    from chokepoint.lp import constraint_family

    @constraint_family("Nothing touched reaches NBCP", cases={A})
    def no_touched_nbcp(m):
        r"""x_a \le 0 \quad \forall a \in \mathrm{in}(\mathrm{NBCP})
        Test rule."""
        arcs = [a for a in m.arcs if a[1] == "Non-Battery Cathode Products"]
        off = 1 - m.on["no_touched_nbcp"]
        return pyo.Constraint(arcs, rule=lambda m, s, t: m.touched[s, t] <= m.tonnes[s, t] * off)

    try:
        lp = VulnerabilityLP(tiny)
        nodes = FocalSet.of("c", ["CHN"]).nodes(tiny)
        # China's 100 t are all touched; with nothing touched allowed into NBCP, Korea's 30 t of
        # NBCP must come from its 25 t of TFCR: infeasible in A, untouched in the other cases.
        with pytest.raises(SolverError, match="(?i)infeasible"):
            lp.solve(nodes, "LFP", A)
        assert lp.solve(nodes, "LFP", O) == pytest.approx(70.0)
    finally:
        from chokepoint.lp import FAMILIES as registry
        registry.pop("no_touched_nbcp", None)


def test_user_family_without_its_switch_is_refused(tiny):
    """A case-specific rule that ignores its switch would bind in every case: refuse it."""
    from chokepoint.lp import constraint_family

    @constraint_family("Unswitched", cases={A})
    def unswitched(m):
        r"""x_a \le 0
        Test rule."""
        return pyo.Constraint(expr=m.touched["Japan_cath_poss", "LFP"] <= 0)

    try:
        with pytest.raises(ValueError, match=r"does not use its switch m.on\['unswitched'\]"):
            VulnerabilityLP(tiny)
    finally:
        FAMILIES.pop("unswitched", None)

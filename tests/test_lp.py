"""The LP on the tiny network, each case checked by hand (see conftest.TINY_ARCS), and the
statement: one compact model per case formulation, every component declared."""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo
import pytest

from chokepoint.cases import Case
from chokepoint.errors import SolverError
from chokepoint.focal import FocalSet
from chokepoint.lp import (CORE_FAMILIES, SYMBOLS, SolveFailed, VulnerabilityLP,
                           constraint_family, formulations)
from chokepoint.lp.arrays import arrays
from chokepoint.lp.families import FLOW, SHARE
from chokepoint.lp.model import build_model

P, O, A, B = Case.PROPORTIONAL, Case.OPTIMISTIC, Case.PESSIMISTIC_A, Case.PESSIMISTIC_B


def _installed(name):
    try:
        from chokepoint.lp.pyomo_engine import make_solver

        make_solver(name)
        return True
    except SolverError:
        return False


SOLVERS = ["highspy", "network", "appsi_highs"] + [s for s in ("glpk", "cbc") if _installed(s)]


def vi(net, keys, case, stages=("mining", "refining", "cathode"), solver="highspy", **kw):
    nodes = FocalSet.of("f", keys, stages).nodes(net)
    return VulnerabilityLP(net, solver, **kw).solve(nodes, "LFP", case) / net.product_supply("LFP")


@pytest.mark.parametrize("solver", SOLVERS)
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
def test_miner_focal(tiny, case, expected, solver):
    assert vi(tiny, ["AUS"], case, solver=solver) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("case, expected", [(P, 1.0), (O, 70 / 95), (A, 1.0), (B, 1.0)])
def test_refiner_focal(tiny, case, expected, solver):
    assert vi(tiny, ["CHN"], case, solver=solver) == pytest.approx(expected, abs=1e-9)


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


@pytest.mark.parametrize("solver", ["highspy", "network", "appsi_highs"])
def test_resolving_in_any_order_gives_the_same_answers(tiny, solver):
    """A kept model must not remember an earlier focal set, product or case."""
    lp = VulnerabilityLP(tiny, solver)
    sets = {k: FocalSet.of(k, [k]).nodes(tiny) for k in ["AUS", "CHN", "KOR", "CHL"]}
    fresh = {(k, c): VulnerabilityLP(tiny, solver).solve(n, "LFP", c) for k, n in sets.items()
             for c in Case}
    for c in [B, P, A, O, P, B, O]:
        for k in ["KOR", "AUS", "CHL", "CHN", "AUS"]:
            assert lp.solve(sets[k], "LFP", c) == pytest.approx(fresh[k, c], abs=1e-9)


def test_touched_flows_hold_the_mass_balance(tiny):
    lp = VulnerabilityLP(tiny)
    lp.solve(FocalSet.of("a", ["AUS"]).nodes(tiny), "LFP", A)
    x = lp.touched_flows()
    assert x["Australia_mine", "China_ref_poss"] == pytest.approx(60.0)
    assert x["Chile_mine", "China_ref_poss"] == pytest.approx(0.0)
    out = x["China_ref", "Japan_cath_poss"] + x["China_ref", "Korea, Republic of_cath_poss"]
    assert out == pytest.approx(60.0)
    lp.solve(FocalSet.of("a", ["AUS"]).nodes(tiny), "LFP", P)
    assert lp.touched_flows()["China_ref", "Japan_cath_poss"] == pytest.approx(30.0)


# -- the statement ------------------------------------------------------------------------


def test_every_family_documents_its_equation():
    for fam in CORE_FAMILIES.values():
        assert "\\" in fam.equation or "=" in fam.equation, fam.name
        assert fam.title and fam.cases and fam.description, fam.name
    for sym in SYMBOLS.values():
        assert sym.title and sym.description and sym.unit


def test_one_compact_model_per_case_formulation(tiny):
    forms = formulations(tuple(Case))
    assert forms[O] is forms[A]  # the same families: one model, the sense flips
    assert forms[B] is not forms[A] and forms[P] is not forms[A]
    assert forms[P].layout == SHARE and forms[A].layout == FLOW
    d = arrays(tiny)
    for case, f in forms.items():
        m = build_model(d, f)
        assert not hasattr(m, "on"), "no switch parameters"
        names = {c.local_name for c in m.component_objects(pyo.Constraint)}
        assert names == {x.name for x in f.core if x.kind == "rows"}, case
    prop = build_model(d, forms[P])
    assert not isinstance(prop.touched, pyo.Var) and len(prop.share) == len(d.interior_idx)
    bounds = build_model(d, forms[A])
    assert len(bounds.touched_mass_balance) == len(d.interior_idx)  # one row per node
    assert len(build_model(d, forms[B]).uncertain_release) == len(d.uncertain_idx)


def test_every_model_component_is_declared(tiny):
    d = arrays(tiny)
    for f in set(formulations(tuple(Case), pinning=True).values()):
        m = build_model(d, f)
        rows = {x.name for x in f.core if x.kind == "rows"}
        for c in m.component_objects((pyo.Set, pyo.Param, pyo.Var, pyo.Expression),
                                     descend_into=False):
            owner = c.local_name.rsplit("_", 1)[0]
            assert c.local_name in SYMBOLS or owner in rows, f"{c.local_name} is undeclared"
            assert c.doc, c.local_name
        for c in m.component_objects(pyo.Constraint, descend_into=False):
            assert c.local_name in CORE_FAMILIES
            assert c.doc.startswith(CORE_FAMILIES[c.local_name].title)


def test_any_pyomo_solver_solves_the_statement(tiny):
    """The Pyomo model alone, solved by HiGHS through Pyomo, gives the hand-checked index."""
    f = formulations(tuple(Case))[A]
    lp = VulnerabilityLP(tiny, "appsi_highs")
    lp.solve(FocalSet.of("a", ["AUS"]).nodes(tiny), "LFP", A)  # sets bounds and parameters
    m = lp.engine(A).model
    assert m is not None and f.cases == (O, A)
    res = pyo.SolverFactory("appsi_highs").solve(m)
    assert pyo.value(m.objective) == pytest.approx(60.0)
    assert str(res.solver.termination_condition) == "optimal"


def test_unknown_solver_suggests(tiny):
    with pytest.raises(SolverError, match=r"unknown solver 'glkp' \(did you mean 'glpk'\?\)"):
        VulnerabilityLP(tiny, "glkp")


def test_the_docs_mathematics_is_generated_from_the_model():
    """docs/lp.md holds no hand-written copy: the site's hook fills it from the model (the site
    test checks the built page)."""
    from pathlib import Path

    from chokepoint.outputs.docs import math_markdown

    page = (Path(__file__).resolve().parents[1] / "docs" / "lp.md").read_text(encoding="utf-8")
    assert "<!-- generated: math -->" in page and "touched_mass_balance" not in page
    assert all(f"`{name}`" in math_markdown() for name in CORE_FAMILIES)


# -- user families ---------------------------------------------------------------------------


@constraint_family("Nothing touched reaches NBCP", cases=[A])
def no_touched_nbcp(m):
    r"""x_a \le 0 \quad \forall a \in \mathrm{in}(\mathrm{NBCP})
    Test rule."""
    arcs = [a for a in m.arcs if a[1] == "Non-Battery Cathode Products"]
    return pyo.Constraint(arcs, rule=lambda m, s, t: m.touched[s, t] <= 0)


@constraint_family("Weighted cap on Japan", cases=[O, A, B], parameters={"weight": 1.0,
                                                                         "cap": 50.0})
def weighted_cap(m, weight, cap):
    r"""w x_{\mathrm{CHN} \to \mathrm{JPN}} \le c
    Test rule with a parameter in a coefficient."""
    return pyo.Constraint(expr=weight * m.touched["China_ref", "Japan_cath_poss"] <= cap)


def test_user_family_is_built_into_its_cases_only(tiny):
    lp = VulnerabilityLP(tiny, families=[no_touched_nbcp])
    assert [f.name for f in lp.formulations[A].user] == ["no_touched_nbcp"]
    assert not lp.formulations[O].user and not lp.formulations[B].user
    nodes = FocalSet.of("c", ["CHN"]).nodes(tiny)
    # China's 100 t are all touched; with nothing touched allowed into NBCP, Korea's 30 t of
    # NBCP must come from its 25 t of TFCR: infeasible in A, untouched in the other cases.
    with pytest.raises(SolveFailed, match="Infeasible"):
        lp.solve(nodes, "LFP", A)
    assert lp.solve(nodes, "LFP", O) == pytest.approx(70.0)


@pytest.mark.parametrize("solver", ["highspy", "appsi_highs"] + (["glpk"] if "glpk" in SOLVERS
                                                                  else []))
def test_parameter_in_a_coefficient_is_honoured_by_every_solver(tiny, solver):
    """A changed parameter re-solves without a rebuild, also where it multiplies a variable."""
    nodes = FocalSet.of("a", ["AUS"]).nodes(tiny)
    lp = VulnerabilityLP(tiny, solver, [weighted_cap])
    assert lp.solve(nodes, "LFP", A) == pytest.approx(60.0)  # 50 t to Japan allowed
    engine = lp.engine(A)
    lp.set_parameters({"weighted_cap.weight": 5.0})  # now x_CHN->JPN <= 10
    value = lp.solve(nodes, "LFP", A)
    assert lp.engine(A) is engine
    # by hand: 60 touched tonnes leave China; at most 10 go to Japan, so 50 go to Korea,
    # which sends at most 45 into LFP: 10 + 45 = 55 t.
    assert value == pytest.approx(55.0, abs=1e-6)
    lp.set_parameters({"weighted_cap.weight": 1.0, "weighted_cap.cap": 20.0})
    assert lp.solve(nodes, "LFP", A) == pytest.approx(20 + 40, abs=1e-6)


def test_unknown_parameter_suggests(tiny):
    from chokepoint.errors import ChokepointError

    with pytest.raises(ChokepointError, match=r"'weighted_cap.wieght' .*did you mean "
                                              r"'weighted_cap.weight'"):
        VulnerabilityLP(tiny, families=[weighted_cap], parameters={"weighted_cap.wieght": 2})


def test_family_declaration_is_checked():
    with pytest.raises(ValueError, match="docstring"):
        @constraint_family("No doc")
        def nodoc(m):
            return pyo.Constraint(expr=m.touched["a", "b"] <= 0)
    with pytest.raises(ValueError, match=r"takes \['share'\] after the model but declares "
                                         r"parameters \[\]"):
        @constraint_family("Undeclared")
        def undeclared(m, share):
            r"""x \le s"""


def test_network_engine_hands_user_families_to_the_lp(tiny):
    lp = VulnerabilityLP(tiny, "network", [no_touched_nbcp])
    nodes = FocalSet.of("a", ["AUS"]).nodes(tiny)
    assert lp.solve(nodes, "LFP", O) == pytest.approx(30.0)
    assert type(lp.engine(O)).__name__ == "FlowEngine"
    lp.solve(nodes, "LFP", A)
    assert type(lp.engine(A)).__name__ == "HighsEngine"
    assert lp.notes == ["solver network serves the core families only: pessimistic_a "
                        "(no_touched_nbcp) is solved by highspy"]


def test_infeasible_solve_names_focal_set_pair_case_and_culprit(tiny):
    from chokepoint.chemistry import parse_pair
    from chokepoint.index import compute

    with pytest.raises(SolverError) as e:
        compute({"lithium": tiny}, [FocalSet.of("China", ["CHN"])],
                [parse_pair("LFP-lithium")], [A], families=[weighted_cap, no_touched_nbcp],
                decompose=False)
    msg = str(e.value)
    assert "returned status Infeasible for focal set 'China', pair LFP-lithium, case " \
           "pessimistic_a" in msg
    assert "user families: weighted_cap(weight=1, cap=50), no_touched_nbcp()" in msg
    assert "without no_touched_nbcp it solves: no_touched_nbcp makes it infeasible" in msg
    assert "without weighted_cap it solves" not in msg


def test_scaled_units_give_the_same_indices(tiny):
    """The engine works in units of the largest arc: tonnes x 1e-12 or x 1e12 change nothing."""
    from chokepoint.network import Network

    nodes = FocalSet.of("a", ["AUS"]).nodes(tiny)
    base = {c: vi(tiny, ["AUS"], c) for c in Case}
    for factor in (1e-12, 1e12):
        net = Network.from_arcs(tiny.arcs.assign(tonnes=tiny.arcs["tonnes"] * factor),
                                material="lithium")
        for solver in ("highspy", "network"):
            lp = VulnerabilityLP(net, solver)
            for c in Case:
                got = lp.solve(nodes, "LFP", c) / net.product_supply("LFP")
                assert got == pytest.approx(base[c], abs=1e-9), (factor, solver, c)
    assert np.isfinite(list(base.values())).all()


def test_network_engine_shares_by_substitution_or_one_system_agree_with_the_lp(tiny):
    """Proportional shares: in a chain without loops the network engine substitutes level by
    level; where material goes round a loop (China's refined output partly back to Japan's
    refining pool, Japan's to China's) it solves one sparse system. Both equal the LP."""
    from conftest import TINY_ARCS

    from chokepoint.network import Network

    looped = [a for a in TINY_ARCS if a[:2] != ("China_ref", "Japan_cath_poss")] + [
        ("China_ref", "Japan_cath_poss", 40.0), ("China_ref", "Japan_ref_poss", 14.0),
        ("Japan_ref_poss", "Japan_ref", 14.0), ("Japan_ref", "China_ref_poss", 4.0),
        ("Japan_ref", "Japan_cath_poss", 10.0)]
    looped[[a[:2] for a in looped].index(("China_ref_poss", "China_ref"))] = \
        ("China_ref_poss", "China_ref", 104.0)
    for net, loop in ((tiny, False), (Network.from_arcs(looped), True)):
        lp, flow = VulnerabilityLP(net), VulnerabilityLP(net, "network")
        for owners in (["Australia"], ["Chile", "Japan"], ["China"]):
            nodes = FocalSet.of("f", owners).nodes(net)
            assert flow.solve(nodes, "LFP", Case.PROPORTIONAL) == pytest.approx(
                lp.solve(nodes, "LFP", Case.PROPORTIONAL), abs=1e-9)
        assert (flow.engine(Case.PROPORTIONAL)._levels() is None) is loop


# -- questions answered ahead on forked workers ------------------------------------------------


def test_bound_questions_answered_on_forked_workers_equal_those_answered_here(tiny,
                                                                            monkeypatch):
    """Above a size (lowered here to the tiny network's) the default solver's bound questions
    are answered on forked workers first; each answer, its iterations and its failure are then
    what this process would have given, and touched flows are solved again here."""
    import chokepoint.lp.solver as solver

    monkeypatch.setattr(solver, "HIGHS_PARALLEL_MIN_ARCS", 0)
    sets = [FocalSet.of(k, [k]).nodes(tiny) for k in ("CHN", "AUS", "CHL")]
    questions = [(n, "LFP", c) for c in (O, A, B) for n in sets]
    ahead = VulnerabilityLP(tiny, families=[no_touched_nbcp])
    assert ahead.prefetch(questions, workers=2) > 0
    here = VulnerabilityLP(tiny, families=[no_touched_nbcp])
    for nodes, product, case in questions:
        try:
            want = here.solve(nodes, product, case)
        except SolveFailed as e:  # China in A: infeasible with the family, in either process
            with pytest.raises(SolveFailed, match=e.status):
                ahead.solve(nodes, product, case)
            continue
        assert ahead.solve(nodes, product, case) == pytest.approx(want, abs=1e-9)
        assert ahead.last_seconds() is not None  # answered by a worker
        assert ahead.last_solve()[0] == "highspy" and ahead.last_solve()[1] is not None
    ahead.solve(sets[1], "LFP", A)
    assert ahead.last_seconds() is None  # each answer is given once; this one solved here
    ahead.prefetch([(sets[1], "LFP", A), (sets[2], "LFP", A)], workers=2)
    ahead.solve(sets[1], "LFP", A)
    assert ahead.last_seconds() is not None
    here.solve(sets[1], "LFP", A)
    assert ahead.touched_flows() == pytest.approx(here.touched_flows(), abs=1e-9)


@pytest.mark.parametrize("workers", [0, -2, 2.5, float("nan"), "2", True])
def test_a_number_of_workers_that_is_no_count_of_processes_is_named(tiny, workers):
    import chokepoint

    with pytest.raises(chokepoint.ChokepointError, match=r"^workers: expected a positive whole "
                                                         r"number of processes, got "):
        chokepoint.vulnerability(tiny, {"China": ["CHN"]}, pairs=["LFP-lithium"],
                                 workers=workers)

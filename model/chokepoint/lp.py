"""The vulnerability index as one Pyomo LP.

The model is built once per network. A focal set, a product and a case are then chosen by
changing mutable parameters (focal membership, product weights, uncertain-source caps) and by
activating the constraint families of the case; a persistent solver re-solves the changed model.

Every set, parameter and variable is declared in :data:`SYMBOLS` (title, description, unit) and
every constraint family in :data:`FAMILIES` (title, the cases it is active in, its equation in the
docstring). The README's mathematics and the results' metadata are generated from these.
Users add a rule by decorating a function with :func:`constraint_family`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pyomo.environ as pyo
from pyomo.common.collections import ComponentMap, ComponentSet
from pyomo.common.errors import ApplicationError

from .cases import Case
from .errors import SolverError, did_you_mean
from .network import Network, Stage

#: Solver used when a scenario names none: HiGHS via highspy, fed the model's matrix once.
DEFAULT_SOLVER = "highspy"
#: HiGHS through Pyomo's persistent (appsi) interface.
APPSI_SOLVER = "appsi_highs"


@dataclass(frozen=True)
class Symbol:
    """Metadata of one set, parameter or variable of the LP."""

    name: str
    kind: str  # "set", "param" or "var"
    latex: str
    title: str
    description: str
    unit: str = "-"


SYMBOLS: dict[str, Symbol] = {
    s.name: s
    for s in [
        Symbol("nodes", "set", r"N", "Nodes", "Every node of the network: (owner, stage)."),
        Symbol("arcs", "set", r"A", "Arcs", "Every arc (source, target) with observed flow."),
        Symbol("interior", "set", r"N^{\mathrm{int}}", "Interior nodes",
               "Refining pools, refiners and cathode pools: nodes that pass material on."),
        Symbol("ownable_arcs", "set", r"A^{\mathrm{own}}", "Arcs out of country nodes",
               "Arcs leaving a mine or an interior node, which a focal country can own."),
        Symbol("mine_arcs", "set", r"A^{\mathrm{mine}}", "Mine arcs",
               "Arcs leaving a mine or a recycler (a country's primary sources)."),
        Symbol("uncertain_sources", "set", r"U", "Uncertain sources",
               "MRMT, URMS, UARP, TFCR, TFCM: material of unknown origin."),
        Symbol("uncertain_arcs", "set", r"A^{U}", "Uncertain arcs",
               "Arcs leaving an uncertain source."),
        Symbol("product_arcs", "set", r"A^{P}", "Product arcs", "Arcs into a product sink."),
        Symbol("interior_out_arcs", "set", r"A^{\mathrm{int}}", "Arcs out of interior nodes",
               "Arcs whose source is an interior node."),
        Symbol("observed_interior", "set", r"N^{\mathrm{obs}}", "Observed interior nodes",
               "Interior nodes with observed inflow (inflow not from uncertain sources)."),
        Symbol("unobserved_interior", "set", r"N^{\varnothing}", "Unobserved interior nodes",
               "Interior nodes fed only by uncertain sources."),
        Symbol("families", "set", r"K", "Constraint families",
               "The named rules of the LP (see below), each switched on in some cases."),
        Symbol("tonnes", "param", r"v_a", "Observed flow",
               "Tonnage of contained element on each arc.", "t"),
        Symbol("outflow", "param", r"\bar{v}_n", "Node outflow",
               "Observed outflow of a node.", "t"),
        Symbol("observed_inflow", "param", r"\underline{v}_n", "Observed inflow",
               "Inflow of an interior node from arcs that do not leave an uncertain source.",
               "t"),
        Symbol("imbalance", "param", r"\delta_n", "Node imbalance",
               "Outflow minus inflow of an interior node in the data (rounding only).", "t"),
        Symbol("focal", "param", r"f_n", "Focal membership",
               "1 if the node's owner is in the focal set at the node's stage, else 0 "
               "(mutable).", "-"),
        Symbol("weight", "param", r"w_a", "Product weight",
               "1 on the arcs into the product being measured, else 0 (mutable).", "-"),
        Symbol("release_cap", "param", r"c_u", "Uncertain-source cap",
               "Pessimistic B: min(outflow of u, P_F), with P_F the focal set's mine and "
               "refining output plus its cathode output into the product (mutable).", "t"),
        Symbol("pinned", "param", r"p_n", "Pinned split",
               "1 to split node n's touched outflow pro rata over its arcs in every case, as "
               "proportional mixing does (mutable; the band-narrowing analysis pins one node at "
               "a time), else 0.", "-"),
        Symbol("on", "param", r"y_k", "Family switch",
               "1 if constraint family k applies in the case being solved, else 0 (mutable). "
               "In each family's equation y is its own switch; switched off, the family's "
               "bounds widen to what the flow bounds already imply, so the matrix never changes "
               "between cases.", "-"),
        Symbol("touched", "var", r"x_a", "Touched flow",
               "Part of an arc's flow that a focal country mined, refined, made into cathode "
               "or traded at some earlier step.", "t"),
        Symbol("share", "var", r"s_n", "Touched share",
               "Proportional case: touched fraction of an interior node's throughput.", "-"),
    ]
}


@dataclass(frozen=True)
class ConstraintFamily:
    """A named physical rule; ``build`` returns the Pyomo constraint for a model."""

    name: str
    title: str
    cases: frozenset[Case]
    build: Callable[[pyo.ConcreteModel], pyo.Constraint]
    unit: str = "t"

    @property
    def equation(self) -> str:
        """The rule's equation, the first line of its docstring (LaTeX)."""
        return inspect.getdoc(self.build).splitlines()[0]

    @property
    def description(self) -> str:
        return " ".join(inspect.getdoc(self.build).splitlines()[1:]).strip()


#: Every constraint family, in the order they are added to the model.
FAMILIES: dict[str, ConstraintFamily] = {}

_ALL = frozenset(Case)
_BOUNDS = frozenset({Case.OPTIMISTIC, Case.PESSIMISTIC_A, Case.PESSIMISTIC_B})


def constraint_family(title: str, cases: Iterable[Case] = _ALL, unit: str = "t"):
    """Register a constraint family. The function's docstring starts with its equation.

    A family that applies in only some ``cases`` must be relaxed by its switch
    ``1 - m.on[name]`` so that, switched off, it binds nothing (see ``proportional_mixing``):
    families are never removed from the solver, whose matrix stays as built.
    """

    def register(build: Callable[[pyo.ConcreteModel], pyo.Constraint]):
        if not inspect.getdoc(build):
            raise ValueError(f"constraint family {build.__name__} needs a docstring equation")
        FAMILIES[build.__name__] = ConstraintFamily(
            build.__name__, title, frozenset(cases), build, unit
        )
        return build

    return register


# -- constraint families -------------------------------------------------------------------
# Each states one physical rule. ``m.out_arcs[n]`` / ``m.in_arcs[n]`` are plain dicts of arcs.


@constraint_family("Focal origin")
def focal_origin(m):
    r"""x_a \ge v_a f_{\mathrm{src}(a)} \quad \forall a \in A^{\mathrm{own}}
    Everything leaving a focal node is touched (with the capacity bound, x_a = v_a)."""
    return pyo.Constraint(
        m.ownable_arcs, rule=lambda m, s, t: m.touched[s, t] >= m.tonnes[s, t] * m.focal[s]
    )


@constraint_family("Clean origin of mines")
def clean_origin(m):
    r"""x_a \le v_a f_{\mathrm{src}(a)} \quad \forall a \in A^{\mathrm{mine}}
    Ore from a non-focal mine is untouched."""
    return pyo.Constraint(
        m.mine_arcs, rule=lambda m, s, t: m.touched[s, t] <= m.tonnes[s, t] * m.focal[s]
    )


@constraint_family(
    "Clean origin of uncertain sources", cases={Case.OPTIMISTIC, Case.PESSIMISTIC_A}
)
def clean_uncertain_origin(m):
    r"""x_a \le v_a (1 - y) \quad \forall a \in A^{U}
    Material of unknown origin is untouched (optimistic and pessimistic A)."""
    off = 1 - m.on["clean_uncertain_origin"]
    return pyo.Constraint(
        m.uncertain_arcs, rule=lambda m, s, t: m.touched[s, t] <= m.tonnes[s, t] * off
    )


@constraint_family("Touched mass balance", cases=_BOUNDS)
def touched_mass_balance(m):
    r"""\min(0,\delta_n) - (1-y)(\bar{v}_n - \delta_n) \le \sum_{a \in \mathrm{out}(n)} x_a - \sum_{a \in \mathrm{in}(n)} x_a \le \max(0,\delta_n) + \bar{v}_n f_n + (1-y)\bar{v}_n \quad \forall n \in N^{\mathrm{int}}
    Touched material is conserved at every non-focal interior node (up to the node's own
    rounding imbalance in the data); a focal node's outflow is all touched whatever it receives.
    Switched off, the band is the node's inflow and outflow, which the flow bounds imply."""
    off = 1 - m.on["touched_mass_balance"]

    def rule(m, n):
        net = sum(m.touched[a] for a in m.out_arcs[n]) - sum(m.touched[a] for a in m.in_arcs[n])
        lo, hi = min(0.0, m.imbalance[n]), max(0.0, m.imbalance[n])
        inflow = m.outflow[n] - m.imbalance[n]
        return pyo.inequality(
            lo - inflow * off, net, hi + m.outflow[n] * m.focal[n] + m.outflow[n] * off
        )

    return pyo.Constraint(m.interior, rule=rule)


@constraint_family("Uncertain-source release", cases={Case.PESSIMISTIC_B})
def uncertain_release(m):
    r"""\sum_{a \in \mathrm{out}(u)} x_a \le c_u + (1-y)\bar{v}_u \quad \forall u \in U
    Pessimistic B: each uncertain source may carry touched material up to min(its outflow, P_F)."""
    off = 1 - m.on["uncertain_release"]
    return pyo.Constraint(
        m.uncertain_sources,
        rule=lambda m, u: sum(m.touched[a] for a in m.out_arcs[u])
        <= m.release_cap[u] + m.outflow[u] * off,
    )


@constraint_family("Proportional mixing", cases={Case.PROPORTIONAL})
def proportional_mixing(m):
    r"""-(1-y)(1-p_n) v_a \le x_a - v_a s_n \le (1-y)(1-p_n) v_a \quad \forall a \in A^{\mathrm{int}}, n = \mathrm{src}(a)
    Every arc out of an interior node carries the node's touched share (in the proportional
    case, or at a node whose split is pinned)."""
    off = 1 - m.on["proportional_mixing"]
    return pyo.Constraint(
        m.interior_out_arcs,
        rule=lambda m, s, t: pyo.inequality(
            -m.tonnes[s, t] * off * (1 - m.pinned[s]),
            m.touched[s, t] - m.tonnes[s, t] * m.share[s],
            m.tonnes[s, t] * off * (1 - m.pinned[s])),
    )


@constraint_family("Proportional share", cases={Case.PROPORTIONAL})
def proportional_share(m):
    r"""-(1-y)\underline{v}_n \le s_n \underline{v}_n - \sum_{a \in \mathrm{in}(n) \setminus A^{U}} x_a \le \underline{v}_n f_n + (1-y)\underline{v}_n \quad \forall n \in N^{\mathrm{obs}}
    A non-focal node's share is the touched fraction of its observed inflow (a focal node's
    share is 1 through focal origin)."""
    off = 1 - m.on["proportional_share"]

    def rule(m, n):
        touched_in = sum(m.touched[a] for a in m.observed_in_arcs[n])
        return pyo.inequality(
            -m.observed_inflow[n] * off,
            m.share[n] * m.observed_inflow[n] - touched_in,
            m.observed_inflow[n] * m.focal[n] + m.observed_inflow[n] * off,
        )

    return pyo.Constraint(m.observed_interior, rule=rule)


@constraint_family("Unobserved share", cases={Case.PROPORTIONAL}, unit="-")
def unobserved_share(m):
    r"""s_n \le f_n + (1-y) \quad \forall n \in N^{\varnothing}
    A non-focal node fed only by uncertain sources has share 0."""
    off = 1 - m.on["unobserved_share"]
    return pyo.Constraint(m.unobserved_interior,
                          rule=lambda m, n: m.share[n] <= m.focal[n] + off)


@constraint_family("Uncertain mixing", cases={Case.PROPORTIONAL})
def uncertain_mixing(m):
    r"""-(1-y) v_a \le x_a - v_a s_{\mathrm{tgt}(a)} \le (1-y) v_a \quad \forall a \in A^{U}
    Material of unknown origin carries the touched share of the node it enters."""
    off = 1 - m.on["uncertain_mixing"]
    return pyo.Constraint(
        m.uncertain_arcs,
        rule=lambda m, s, t: pyo.inequality(
            -m.tonnes[s, t] * off, m.touched[s, t] - m.tonnes[s, t] * m.share[t],
            m.tonnes[s, t] * off),
    )


# -- model ---------------------------------------------------------------------------------


def build_model(network: Network, families: Iterable[str] | None = None) -> pyo.ConcreteModel:
    """The LP of a network with every registered constraint family, all switched on."""
    arcs = list(zip(network.arcs["source"], network.arcs["target"]))
    tonnes = dict(zip(arcs, network.arcs["tonnes"].astype(float)))
    stage = network.nodes["stage"].to_dict()
    flow = network.node_flow()

    interior = [n for n in network.nodes.index if stage[n].is_interior]
    uncertain = [n for n in network.nodes.index if stage[n] is Stage.UNCERTAIN_SOURCE]
    observed_inflow = {n: 0.0 for n in interior}
    for (s, t), v in tonnes.items():
        if t in observed_inflow and stage[s] is not Stage.UNCERTAIN_SOURCE:
            observed_inflow[t] += v

    m = pyo.ConcreteModel(name=f"chokepoint {network.material} {network.year or ''}".strip())
    m.nodes = pyo.Set(initialize=list(network.nodes.index), ordered=True)
    m.arcs = pyo.Set(initialize=arcs, dimen=2, ordered=True)
    m.interior = pyo.Set(initialize=interior, ordered=True)
    m.ownable_arcs = pyo.Set(
        initialize=[a for a in arcs if stage[a[0]].is_primary or stage[a[0]].is_interior],
        dimen=2, ordered=True)
    m.mine_arcs = pyo.Set(initialize=[a for a in arcs if stage[a[0]].is_primary], dimen=2)
    m.uncertain_sources = pyo.Set(initialize=uncertain, ordered=True)
    m.uncertain_arcs = pyo.Set(initialize=[a for a in arcs if a[0] in set(uncertain)], dimen=2)
    m.product_arcs = pyo.Set(
        initialize=[a for a in arcs if stage[a[1]] is Stage.PRODUCT], dimen=2, ordered=True)
    m.interior_out_arcs = pyo.Set(
        initialize=[a for a in arcs if stage[a[0]].is_interior], dimen=2, ordered=True)
    m.observed_interior = pyo.Set(initialize=[n for n in interior if observed_inflow[n] > 0])
    m.unobserved_interior = pyo.Set(initialize=[n for n in interior if observed_inflow[n] <= 0])

    m.tonnes = pyo.Param(m.arcs, initialize=tonnes, within=pyo.NonNegativeReals)
    m.outflow = pyo.Param(m.nodes, initialize=flow["outflow"].to_dict())
    m.observed_inflow = pyo.Param(m.interior, initialize=observed_inflow)
    m.imbalance = pyo.Param(
        m.interior, initialize={n: flow.outflow[n] - flow.inflow[n] for n in interior})
    m.focal = pyo.Param(m.nodes, initialize=0.0, mutable=True, within=pyo.UnitInterval)
    m.weight = pyo.Param(m.product_arcs, initialize=0.0, mutable=True)
    m.release_cap = pyo.Param(m.uncertain_sources, initialize=0.0, mutable=True)
    m.pinned = pyo.Param(m.interior, initialize=0.0, mutable=True, within=pyo.Binary)
    names = list(families if families is not None else FAMILIES)
    m.families = pyo.Set(initialize=names, ordered=True)
    m.on = pyo.Param(m.families, initialize=1.0, mutable=True, within=pyo.Binary)

    m.touched = pyo.Var(m.arcs, bounds=lambda m, s, t: (0.0, m.tonnes[s, t]))
    m.share = pyo.Var(m.interior, bounds=(0.0, 1.0))

    m.out_arcs = {n: [] for n in network.nodes.index}
    m.in_arcs = {n: [] for n in network.nodes.index}
    for a in arcs:
        m.out_arcs[a[0]].append(a)
        m.in_arcs[a[1]].append(a)
    m.observed_in_arcs = {
        n: [a for a in m.in_arcs[n] if stage[a[0]] is not Stage.UNCERTAIN_SOURCE]
        for n in interior
    }

    for name in names:
        family = FAMILIES[name]
        component = family.build(m)
        component.doc = f"{family.title}: {family.equation}"
        m.add_component(name, component)

    m.objective = pyo.Objective(
        expr=sum(m.weight[a] * m.touched[a] for a in m.product_arcs), sense=pyo.minimize
    )
    for c in m.component_objects((pyo.Set, pyo.Param, pyo.Var), descend_into=False):
        if c.local_name in SYMBOLS:
            c.doc = SYMBOLS[c.local_name].title
    return m


# -- solving -------------------------------------------------------------------------------


def available_solvers() -> list[str]:
    """Solver names Pyomo knows, for suggestions."""
    return sorted({DEFAULT_SOLVER, APPSI_SOLVER, "highs", "glpk", "cbc", "gurobi", "cplex",
                   "scip", "xpress", "appsi_gurobi", "appsi_cplex", "appsi_cbc",
                   *map(str, pyo.SolverFactory)})


class VulnerabilityLP:
    """One network's LP and its solver; ``solve`` returns the touched tonnes into the product.

    The model is built and handed to the solver once. Focal set, product and case are mutable
    parameters; a persistent solver is sent only the constraints whose parameters changed.
    ``highspy`` (default) compiles the model to a matrix once; ``appsi_highs`` is Pyomo's
    persistent interface; any other name is a Pyomo solver sent the whole model every solve.
    """

    def __init__(self, network: Network, solver: str = DEFAULT_SOLVER):
        self.network = network
        self.solver_name = solver
        self.model = build_model(network)
        self._stage = network.nodes["stage"].to_dict()
        self._focal: frozenset[str] = frozenset()
        self._product: str | None = None
        self._case: Case | None = None
        self._kind = {DEFAULT_SOLVER: "matrix", APPSI_SOLVER: "appsi"}.get(solver, "generic")
        self._solver = self._make_solver(solver)
        self._uses = self._parameter_uses()
        self._stale = ComponentSet()
        self.set_case(Case.PROPORTIONAL)
        if self._kind == "appsi":
            self._solver.set_instance(self.model)
        elif self._kind == "matrix":
            from .solvers import MatrixHighs

            self._solver = MatrixHighs(self.model)
        self._stale.clear()

    def _make_solver(self, name: str):
        if name == DEFAULT_SOLVER:
            return None  # made once the model is final, in __init__
        try:
            if name == APPSI_SOLVER:
                from pyomo.contrib.appsi.solvers import Highs

                opt = Highs()
                opt.config.load_solution = False
            else:
                if name.startswith("appsi_"):
                    from pyomo.contrib import appsi  # noqa: F401 -- registers appsi solvers
                opt = pyo.SolverFactory(name)
        except Exception as e:  # Pyomo raises many kinds for a bad solver name
            raise SolverError(f"solver {name!r} cannot be created: {e}") from None
        if opt is None or type(opt).__name__ == "UnknownSolver":
            raise SolverError(
                f"unknown solver {name!r}{did_you_mean(name, available_solvers())}"
            )
        try:
            ok = opt.available(exception_flag=False)
        except (ApplicationError, TypeError, AttributeError):
            try:
                ok = bool(opt.available())
            except Exception:
                ok = False
        if not ok:
            raise SolverError(
                f"solver {name!r} is not available on this machine (install it, or use "
                f"solver: {DEFAULT_SOLVER})"
            )
        if self._kind == "appsi":
            cfg = opt.update_config
            # Only parameters change between solves; skip the model scans.
            cfg.check_for_new_or_removed_vars = False
            cfg.check_for_new_or_removed_params = False
            cfg.check_for_new_or_removed_constraints = False
            cfg.update_vars = False
            cfg.update_constraints = False
            cfg.update_named_expressions = False
            cfg.check_for_new_objective = False
            cfg.update_objective = False
            # Changed parameters are pushed by _refresh, for the constraints that use them only.
            cfg.update_params = False
            opt.highs_options = {"output_flag": False}
        return opt

    def _parameter_uses(self) -> ComponentMap:
        """Mutable parameter -> the constraints whose bounds or coefficients use it."""
        from pyomo.core.expr.visitor import identify_mutable_parameters

        uses = ComponentMap()
        for con in self.model.component_data_objects(pyo.Constraint, active=True):
            for p in identify_mutable_parameters(con.expr):
                uses.setdefault(p, ComponentSet()).add(con)
        for name in self.model.families:
            if FAMILIES[name].cases != _ALL and len(getattr(self.model, name)) and \
                    self.model.on[name] not in uses:
                raise ValueError(f"constraint family {name} applies in some cases only but "
                                 f"does not use its switch m.on[{name!r}]")
        return uses

    def _set_param(self, param, value: float) -> None:
        if param.value != value:
            param.set_value(value)
            self._stale.update(self._uses.get(param, ()))

    def _refresh(self) -> None:
        """Send the constraints whose parameters changed to the persistent solver again."""
        if self._kind == "matrix":
            self._solver.update_constraints(self._stale)
        elif self._kind == "appsi":
            helpers = getattr(self._solver, "_mutable_helpers", None)
            if helpers is None:  # another appsi version: update every parameter (same result)
                self._solver.update_params()
            else:
                for con in self._stale:
                    for helper in helpers.get(con, ()):
                        helper.update()
        self._stale.clear()

    # -- changing the question -------------------------------------------------------------

    def set_case(self, case: Case) -> None:
        if case == self._case:
            return
        m = self.model
        for name in m.families:
            self._set_param(m.on[name], 1.0 if case in FAMILIES[name].cases else 0.0)
        m.objective.sense = pyo.minimize if case.spec.sense == "minimize" else pyo.maximize
        if self._case is not None:
            self._forget_basis()
        self._case = case
        self._objective_changed = True

    def _forget_basis(self) -> None:
        """After a case switch the old basis is far from optimal: start cold (presolve, primal
        simplex; see MatrixHighs.forget_basis)."""
        if self._kind == "matrix":
            self._solver.forget_basis()
        elif self._kind == "appsi":
            highs = getattr(self._solver, "_solver_model", None)  # appsi's highspy.Highs
            if highs is not None:
                highs.clearSolver()
                self._solver.highs_options = {"output_flag": False, "simplex_strategy": 4}

    def set_focal(self, focal_nodes: Iterable[str]) -> None:
        focal_nodes = frozenset(focal_nodes)
        for n in self._focal ^ focal_nodes:
            self._set_param(self.model.focal[n], 1.0 if n in focal_nodes else 0.0)
        self._focal = focal_nodes

    def set_product(self, product: str) -> None:
        if product == self._product:
            return
        for a in self.model.product_arcs:
            self.model.weight[a] = 1.0 if a[1] == product else 0.0
        self._product = product
        self._objective_changed = True

    def release_cap(self) -> float:
        """P_F: focal mine (and recycling) and refining output plus focal cathode output into
        the product."""
        m, total = self.model, 0.0
        for n in self._focal:
            st = self._stage[n]
            if st.is_primary or st is Stage.REFINING:
                total += m.outflow[n]
            elif st is Stage.CATHODE_POOL:
                total += sum(m.tonnes[a] for a in m.out_arcs[n] if a[1] == self._product)
        return total

    # -- solving ---------------------------------------------------------------------------

    def pin(self, nodes: Iterable[str]) -> None:
        """Pin the split of these interior nodes (and unpin every other)."""
        nodes = set(nodes)
        for n in self.model.interior:
            self._set_param(self.model.pinned[n], 1.0 if n in nodes else 0.0)

    def solve(self, focal_nodes: Iterable[str], product: str, case: Case,
              clean: Iterable[str] = ()) -> float:
        """Touched tonnes into ``product`` for this focal node set and case; uncertain sources
        in ``clean`` carry no touched material even in pessimistic B."""
        self.set_case(case)
        self.set_focal(focal_nodes)
        self.set_product(product)
        m = self.model
        if case is Case.PESSIMISTIC_B:
            cap = self.release_cap()
            clean = set(clean)
            for u in m.uncertain_sources:
                self._set_param(m.release_cap[u], 0.0 if u in clean else min(m.outflow[u], cap))
        if self._kind == "generic":
            return self._solve_generic()
        self._refresh()
        if self._objective_changed:
            self._solver.set_objective(m.objective)
            self._objective_changed = False
        if self._kind == "matrix":
            status, value = self._solver.solve()
            if status != "Optimal":
                raise self._status_error(status)
            return value
        return self._solve_appsi()

    def _status_error(self, status) -> SolverError:
        where = f"{self.network.material or self.network.origin}, product {self._product}, " \
                f"case {self._case.value}"
        return SolverError(f"solver {self.solver_name!r} returned status {status!s} ({where})")

    def _solve_appsi(self) -> float:
        from pyomo.contrib.appsi.base import TerminationCondition

        res = self._solver.solve(self.model)
        self._solver.highs_options = {"output_flag": False}  # warm from here: HiGHS's choice
        if res.termination_condition != TerminationCondition.optimal:
            raise self._status_error(res.termination_condition.name)
        return float(res.best_feasible_objective)

    def _solve_generic(self) -> float:
        try:
            res = self._solver.solve(self.model, load_solutions=False)
        except (ApplicationError, RuntimeError, ValueError) as e:
            raise SolverError(f"solver {self.solver_name!r} failed: {e}") from None
        cond = res.solver.termination_condition
        if cond != pyo.TerminationCondition.optimal:
            raise self._status_error(cond)
        self.model.solutions.load_from(res)
        return float(pyo.value(self.model.objective))

    def touched_flows(self) -> dict[tuple[str, str], float]:
        """Touched tonnes per arc in the last solution."""
        touched = self.model.touched
        if self._kind == "matrix":
            x = self._solver.values(touched[a] for a in self.model.arcs)
            return {a: float(x[touched[a]]) for a in self.model.arcs}
        if self._kind == "appsi":
            self._solver.load_vars([touched[a] for a in self.model.arcs])
        return {a: float(touched[a].value or 0.0) for a in self.model.arcs}

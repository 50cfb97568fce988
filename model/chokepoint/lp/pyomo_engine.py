"""Any Pyomo solver on a formulation's whole Pyomo model (``appsi_*`` persistently, others
through their usual interface): the reference path that shows the model is the statement."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import contextmanager

import numpy as np
import pyomo.environ as pyo
from pyomo.common.errors import ApplicationError

from ..errors import SolverError, did_you_mean
from .arrays import NetworkArrays, Query
from .families import FLOW, Bounds, Rows
from .formulation import Formulation
from .highs import SolveFailed, column_bounds
from .model import build_model, set_family_parameters
from .solverlog import stdout_fd_to_stderr, swallow_banner, wanted

#: HiGHS through Pyomo's persistent (appsi) interface.
APPSI_SOLVER = "appsi_highs"


def known_solvers() -> list[str]:
    """Solver names Pyomo knows here, for suggestions."""
    from pyomo.contrib import appsi  # noqa: F401 -- registers the appsi_* names

    return sorted({"highspy", "network", "highs", "glpk", "cbc", "gurobi", "cplex", "scip",
                   "xpress", *map(str, pyo.SolverFactory)})


def make_solver(name: str, options: Mapping[str, object] | None = None):
    """A Pyomo solver object, or a one-line SolverError saying why not."""
    swallow_banner()  # Pyomo's HiGHS interfaces make Highs objects too (see solverlog)
    try:
        if name == APPSI_SOLVER:
            from pyomo.contrib.appsi.solvers import Highs

            opt = Highs()
            opt.config.load_solution = False
            opt.config.stream_solver = wanted()  # to stdout: solve() points it at stderr
            opt.highs_options = {"output_flag": wanted(), **(options or {})}
            options = None
        else:
            if name.startswith("appsi_"):
                from pyomo.contrib import appsi  # noqa: F401
            opt = pyo.SolverFactory(name)
    except Exception as e:  # Pyomo raises many kinds for a bad solver name
        raise SolverError(f"solver {name!r} cannot be created: {e}") from None
    if opt is None or type(opt).__name__ == "UnknownSolver":
        raise SolverError(f"unknown solver {name!r}{did_you_mean(name, known_solvers())}")
    try:
        ok = opt.available(exception_flag=False)
    except (ApplicationError, TypeError, AttributeError):
        try:
            ok = bool(opt.available())
        except Exception:
            ok = False
    if not ok:
        raise SolverError(f"solver {name!r} is not available on this machine (install it, or "
                          "use solver: highspy)")
    for k, v in (options or {}).items():
        opt.options[k] = v
    return opt


def sync_model(m, d: NetworkArrays, q: Query) -> None:
    """Set the model's mutable parameters to the query (only the entries that changed)."""
    for i, n in enumerate(d.names):
        value = float(q.focal[i])
        if m.focal[n].value != value:
            m.focal[n].set_value(value)
    for a in m.product_arcs:
        value = 1.0 if a[1] == q.product else 0.0
        if m.weight[a].value != value:
            m.weight[a].set_value(value)
    if hasattr(m, "release_cap"):
        cap = d.release_cap(q.focal, q.product)
        for u in m.release_cap:
            value = 0.0 if u in q.clean else min(m.outflow[u], cap)
            if m.release_cap[u].value != value:
                m.release_cap[u].set_value(value)
    if hasattr(m, "pinned"):
        for n in m.pinned:
            value = 1.0 if n in q.pinned else 0.0
            if m.pinned[n].value != value:
                m.pinned[n].set_value(value)


class PyomoEngine:
    """A Pyomo solver on the formulation's model; variable bounds and row bounds are set from
    the same vectors the HiGHS engine uses."""

    def __init__(self, d: NetworkArrays, formulation: Formulation, solver: str,
                 parameters: Mapping[str, float] | None = None,
                 options: Mapping[str, object] | None = None,
                 blocs: Mapping[str, Mapping] | None = None):
        self.d, self.formulation, self.name = d, formulation, solver
        self.opt = make_solver(solver, options)
        self.persistent = solver == APPSI_SOLVER
        self.model = m = build_model(d, formulation, parameters, blocs=blocs)
        self.cols = list((m.touched if formulation.layout == FLOW else m.share).values())
        built = [(f, f.build(d)) for f in formulation.core]
        self.bound_specs = [s for _, s in built if isinstance(s, Bounds)]
        self.row_specs = [(f.name, s) for f, s in built if isinstance(s, Rows)]
        self._lb = np.full(len(self.cols), np.nan)
        self._ub = np.full(len(self.cols), np.nan)
        self._freed: set[str] = set()

    def set_parameters(self, values: Mapping[str, float]) -> None:
        for fam in self.formulation.user:
            set_family_parameters(self.model, fam, values)

    def _update(self, q: Query) -> None:
        self._lb, self._ub = apply_query(self.model, self.d, self.formulation, q,
                                         self.bound_specs, self.row_specs, self._freed,
                                         self.cols, self._lb, self._ub)

    def solve(self, q: Query) -> float:
        self._update(q)
        # a solver's log (tee: Python's stdout, written through file descriptor 1) and whatever
        # a solver library prints itself go to stderr when logs are wanted, nowhere otherwise:
        # stdout is the user's table. (contextlib.redirect_stdout would deadlock Pyomo's
        # TeeStream.)
        with stdout_fd_to_stderr():
            return self._solve()

    def _solve(self) -> float:
        log = wanted()
        try:
            if self.persistent:
                res = self.opt.solve(self.model)
                cond = res.termination_condition.name
                ok = cond == "optimal"
                if ok:
                    return float(res.best_feasible_objective)
            else:
                res = self.opt.solve(self.model, load_solutions=False, tee=log)
                cond = str(res.solver.termination_condition)
                ok = res.solver.termination_condition == pyo.TerminationCondition.optimal
                if ok:
                    self.model.solutions.load_from(res)
        except (ApplicationError, RuntimeError, ValueError) as e:
            raise SolverError(f"solver {self.name!r} failed: {e}") from None
        if not ok:
            raise SolveFailed(cond)
        return float(pyo.value(self.model.objective))

    def touched(self) -> np.ndarray:
        if self.persistent:
            self.opt.load_vars()
        return np.array([pyo.value(x) for x in self.model.touched.values()], dtype=float)

    @contextmanager
    def without(self, families: Iterable[str]):
        before = set(self._freed)
        self._freed |= set(families)
        try:
            yield self
        finally:
            self._freed = before


def apply_query(m, d: NetworkArrays, formulation: Formulation, q: Query, bound_specs,
                row_specs, freed=frozenset(), cols=None, lb_before=None, ub_before=None):
    """Make a formulation's Pyomo model state the LP of one question: parameters, variable
    bounds, row bounds, active rows, the objective's sense (changed entries only)."""
    sync_model(m, d, q)
    if cols is None:
        cols = list((m.touched if formulation.layout == FLOW else m.share).values())
    lb, ub = column_bounds(d, formulation, bound_specs, q)
    before_lb = lb_before if lb_before is not None else np.full(len(cols), np.nan)
    before_ub = ub_before if ub_before is not None else np.full(len(cols), np.nan)
    for j in np.flatnonzero((lb != before_lb) | (ub != before_ub)):
        cols[j].setlb(float(lb[j]))
        cols[j].setub(float(ub[j]))
    for name, spec in row_specs:
        con = m.component(name)
        lower, upper = m.component(f"{name}_lower"), m.component(f"{name}_upper")
        lo = spec.lower(q) if spec.lower is not None else None
        hi = spec.upper(q) if spec.upper is not None else None
        for i, label in enumerate(spec.labels):
            free = (lo is None or lo[i] == -np.inf) and (hi is None or hi[i] == np.inf)
            row = con[label]
            if free or name in freed:
                if row.active:
                    row.deactivate()
                continue
            if not row.active:
                row.activate()
            if lower is not None:
                lower[label].set_value(float(lo[i]))
            if upper is not None:
                upper[label].set_value(float(hi[i]))
    for fam in formulation.user:
        comp = m.component(fam.name)
        if (fam.name in freed) == comp.active:
            comp.deactivate() if fam.name in freed else comp.activate()
    m.objective.sense = pyo.minimize if q.case.spec.sense == "minimize" else pyo.maximize
    return lb, ub

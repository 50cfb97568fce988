"""HiGHS fed a formulation's matrix once; every new question is a vector update.

The core families' rows come straight from the network's arrays; users' rows are compiled from
their Pyomo constraints (Pyomo's standard representation), so the model stays their statement.
Columns are the layout's variable (touched flow, scaled by the network's largest arc, or shares),
and each row is scaled by its largest coefficient, so the LP is in units of order one whatever the
units of the data. A new focal set, product or case then changes column bounds, row bounds and
costs as vectors (only the entries that changed), never a loop over Pyomo rows; only users' rows
whose mutable parameters changed are compiled again.

Algorithm, chosen by measurement (README, benchmark): small LPs re-solve warm with simplex
(HiGHS's choice). From :data:`IPM_COLUMNS` columns up, by the objective's sense: minimising
(optimistic) with dual simplex, warm from the last focal set's basis (at 2 x 10^5 arcs: 1.2 s
cold, 0.1-0.2 s warm, where interior point takes 3 s); maximising (pessimistic A and B) with the
interior-point solver, without crossover or presolve (3-4 s, where dual simplex needs 10^5
iterations and 45-180 s, warm or cold; presolve's postsolve of an interior solution leaves status
Unknown, and crossover costs as much again). Options a user gives override these.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import contextmanager

import numpy as np
import scipy.sparse as sp

from .arrays import NetworkArrays, Query
from .families import FLOW, Bounds, Rows
from .formulation import ExtensionError, Formulation, layout_size
from .solverlog import log_to_stderr, swallow_banner, wanted

# highspy is imported by the engine, not with this module: a run with `solver: network` or a
# Pyomo solver never loads it. HiGHS's kHighsInf is IEEE infinity.
_INF = np.inf
#: From this many columns up, the algorithm depends on the sense (see the module docstring).
IPM_COLUMNS = 5_000
LARGE_OPTIONS = {
    "minimize": {"solver": "simplex", "simplex_strategy": 1, "presolve": "off"},
    "maximize": {"solver": "ipm", "run_crossover": "off", "presolve": "off"},
}


class SolveFailed(Exception):
    """The solver ended without an optimal solution; ``status`` is its own word for why."""

    def __init__(self, status: str):
        super().__init__(status)
        self.status = status


def column_bounds(d: NetworkArrays, formulation: Formulation, specs: list[Bounds],
                  q: Query) -> tuple[np.ndarray, np.ndarray]:
    """The tightest bounds over the formulation's bound families and the capacity bound
    (0 <= x_a <= v_a, 0 <= s_n <= 1), in tonnes for x."""
    if formulation.layout == FLOW:
        lb, ub = np.zeros(d.n_arcs), d.tonnes.copy()
    else:
        k = len(d.interior_idx)
        lb, ub = np.zeros(k), np.ones(k)
    for spec in specs:
        if spec.lower is not None:
            lb = np.maximum(lb, spec.lower(q))
        if spec.upper is not None:
            ub = np.minimum(ub, spec.upper(q))
    return lb, ub


def objective(d: NetworkArrays, layout: str, product: str) -> tuple[np.ndarray, np.ndarray]:
    """Cost per column (tonnes into ``product`` per unit of the column) and, for the share
    layout, the tonnes each node's focal membership adds (mines straight into the product)."""
    into = d.into(product)
    if layout == FLOW:
        return into.astype(float), np.zeros(d.n_nodes)
    interior = into & d.interior[d.src]
    cost = np.bincount(d.interior_pos[d.src[interior]], d.tonnes[interior],
                       len(d.interior_idx))
    mine = into & d.primary[d.src]
    return cost, np.bincount(d.src[mine], d.tonnes[mine], d.n_nodes)


class UserRows:
    """Users' constraints compiled from their Pyomo model into rows over the layout's columns;
    recompiled when a mutable parameter they use changes value."""

    def __init__(self, model, formulation: Formulation, columns: list):
        from pyomo.core.expr.visitor import identify_mutable_parameters

        self.col_of = {id(v): j for j, v in enumerate(columns)}
        self.rows: list[tuple[str, object]] = []
        for fam in formulation.user:
            for con in model.component(fam.name).values():
                self.rows.append((fam.name, con))
        self.params: list = []
        seen: dict[int, int] = {}
        uses = []
        for i, (_, con) in enumerate(self.rows):
            for p in identify_mutable_parameters(con.expr):
                if id(p) not in seen:
                    seen[id(p)] = len(self.params)
                    self.params.append(p)
                uses.append((seen[id(p)], i))
        self._uses = sp.csr_matrix((np.ones(len(uses)), tuple(np.array(uses, int).T)),
                                   shape=(len(self.params), len(self.rows))) if uses \
            else sp.csr_matrix((len(self.params), len(self.rows)))
        self._values = self._read()
        compiled = [self.compile(i) for i in range(len(self.rows))]
        self.coefs = [c for c, _, _ in compiled]
        self.lower = np.array([lo for _, lo, _ in compiled])
        self.upper = np.array([hi for _, _, hi in compiled])

    def _read(self) -> np.ndarray:
        return np.array([p.value for p in self.params], dtype=float)

    def compile(self, i: int) -> tuple[dict[int, float], float, float]:
        """Row ``i`` as {column: coefficient}, lower, upper (constants moved to the bounds)."""
        import pyomo.environ as pyo
        from pyomo.repn import generate_standard_repn

        family, con = self.rows[i]
        try:
            repn = generate_standard_repn(con.body, compute_values=True, quadratic=False)
            if not repn.is_linear():
                raise ExtensionError(f"constraint family {family}: row {con.name} is not "
                                     "linear")
            coefs: dict[int, float] = {}
            for v, c in zip(repn.linear_vars, repn.linear_coefs):
                j = self.col_of.get(id(v))
                if j is None:
                    raise ExtensionError(f"constraint family {family}: row {con.name} uses "
                                         f"{v.name}, which is not a variable of this case's LP")
                coefs[j] = coefs.get(j, 0.0) + float(c)
            const = float(pyo.value(repn.constant))
            lb = -np.inf if con.lower is None else float(pyo.value(con.lower)) - const
            ub = np.inf if con.upper is None else float(pyo.value(con.upper)) - const
        except ZeroDivisionError:
            raise ExtensionError(f"constraint family {family}: row {con.name} divides by zero "
                                 "with these parameter values") from None
        if not all(np.isfinite(c) for c in coefs.values()) or np.isnan(lb) or np.isnan(ub):
            raise ExtensionError(f"constraint family {family}: row {con.name} has a coefficient "
                                 "or bound that is not a finite number")
        return coefs, lb, ub

    def matrix(self, n_cols: int) -> sp.csr_matrix:
        rows, cols, vals = [], [], []
        for i, coefs in enumerate(self.coefs):
            rows += [i] * len(coefs)
            cols += list(coefs)
            vals += list(coefs.values())
        return sp.csr_matrix((vals, (rows, cols)), shape=(len(self.rows), n_cols))

    def changed(self) -> list[int]:
        """Rows whose parameters changed value since they were last compiled."""
        if not self.params:
            return []
        now = self._read()
        moved = np.flatnonzero(now != self._values)
        self._values = now
        if not len(moved):
            return []
        return sorted(set(self._uses[moved].indices.tolist()))


class HighsEngine:
    """One HiGHS instance per formulation; ``solve(query)`` returns touched tonnes into the
    query's product."""

    name = "highspy"
    #: simplex, interior-point and crossover iterations of the last solve (both runs of one
    #: settled by simplex count only the second's)
    iterations: int | None = None

    def __init__(self, d: NetworkArrays, formulation: Formulation,
                 parameters: Mapping[str, float] | None = None,
                 options: Mapping[str, object] | None = None,
                 blocs: Mapping[str, Mapping] | None = None):
        self.d, self.formulation = d, formulation
        self.n = layout_size(d, formulation.layout)
        built = [(f, f.build(d)) for f in formulation.core]
        self.bound_specs = [s for _, s in built if isinstance(s, Bounds)]
        self.row_specs = [(f.name, s) for f, s in built if isinstance(s, Rows)]
        self.model = None
        self.user: UserRows | None = None
        if formulation.user:
            from .model import build_model

            self.model = build_model(d, formulation, parameters, core_rows=False, blocs=blocs)
            cols = list((self.model.touched if formulation.layout == FLOW
                         else self.model.share).values())
            self.user = UserRows(self.model, formulation, cols)
        self.colscale = np.full(self.n, d.scale if formulation.layout == FLOW else 1.0)
        blocks = [s.matrix for _, s in self.row_specs]
        self.slices: dict[str, slice] = {}
        start = 0
        for name, s in self.row_specs:
            self.slices[name] = slice(start, start + s.matrix.shape[0])
            start += s.matrix.shape[0]
        if self.user:
            blocks.append(self.user.matrix(self.n))
            for fam in formulation.user:
                idx = [i for i, (f, _) in enumerate(self.user.rows) if f == fam.name]
                self.slices[fam.name] = slice(start + idx[0], start + idx[-1] + 1) if idx \
                    else slice(start, start)
            self.user_start = start
        matrix = (sp.vstack(blocks, format="csr") if blocks
                  else sp.csr_matrix((0, self.n))) @ sp.diags(self.colscale)
        matrix = sp.csr_matrix(matrix)
        peak = np.zeros(matrix.shape[0])
        if matrix.nnz:
            peak = np.maximum.reduceat(np.abs(matrix.data), matrix.indptr[:-1]) \
                if matrix.shape[0] else peak
            peak[np.diff(matrix.indptr) == 0] = 1.0
        self.rowscale = 1.0 / np.where(peak > 0, peak, 1.0)
        matrix = (sp.diags(self.rowscale) @ matrix).tocsc()
        self.m_rows = matrix.shape[0]

        import highspy

        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = self.n, self.m_rows
        lp.col_cost_ = np.zeros(self.n)
        lp.col_lower_, lp.col_upper_ = np.zeros(self.n), np.zeros(self.n)
        lp.row_lower_, lp.row_upper_ = np.full(self.m_rows, -_INF), np.full(self.m_rows, _INF)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = matrix.indptr.astype(np.int32)
        lp.a_matrix_.index_ = matrix.indices.astype(np.int32)
        lp.a_matrix_.value_ = matrix.data.astype(float)
        swallow_banner()  # before this process's first Highs object (see solverlog)
        self.highs = highspy.Highs()
        self.user_options = dict(options or {})
        self.options = {"output_flag": wanted(), "threads": 1, **self.user_options}
        for k, v in self.options.items():
            self._set_option(k, v)
        if self.options["output_flag"] in (True, "true", "on", 1):
            log_to_stderr(self.highs)  # HiGHS's console is stdout
        self.large = self.n >= IPM_COLUMNS
        self.highs.passModel(lp)
        self._lb = np.zeros(self.n)
        self._ub = np.zeros(self.n)
        self._rlo = np.full(self.m_rows, -_INF)
        self._rhi = np.full(self.m_rows, _INF)
        self._product: str | None = None
        self._constant = np.zeros(d.n_nodes)
        self._freed: set[str] = set()
        self._focal = np.zeros(d.n_nodes)

    def _set_option(self, key: str, value) -> None:
        import highspy

        status = self.highs.setOptionValue(key, value)
        if status != highspy.HighsStatus.kOk:
            from ..errors import SolverError

            raise SolverError(f"highspy: cannot set option {key}={value!r} (see HiGHS's "
                              "options: solver, presolve, run_crossover, simplex_strategy, ...)")

    # -- the question ------------------------------------------------------------------------

    def _sync_model(self, q: Query) -> None:
        """Mirror the query in the Pyomo model that users' rules read (changed entries only)."""
        m, d = self.model, self.d
        for i in np.flatnonzero(q.focal != self._focal):
            m.focal[d.names[i]].set_value(float(q.focal[i]))
        self._focal = q.focal.copy()
        if self._product != q.product:
            for a in m.product_arcs:
                m.weight[a].set_value(1.0 if a[1] == q.product else 0.0)
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

    def set_parameters(self, values: Mapping[str, float]) -> None:
        if self.model is None:
            return
        from .model import set_family_parameters

        for fam in self.formulation.user:
            set_family_parameters(self.model, fam, values)

    def _update(self, q: Query) -> None:
        d = self.d
        self._query = q
        lb, ub = column_bounds(d, self.formulation, self.bound_specs, q)
        lb, ub = lb / self.colscale, ub / self.colscale
        changed = np.flatnonzero((lb != self._lb) | (ub != self._ub))
        if len(changed):
            self.highs.changeColsBounds(len(changed), changed.astype(np.int32), lb[changed],
                                        ub[changed])
            self._lb, self._ub = lb, ub
        rlo, rhi = self._rlo.copy(), self._rhi.copy()
        for name, spec in self.row_specs:
            s = self.slices[name]
            rlo[s] = -_INF if spec.lower is None else spec.lower(q) * self.rowscale[s]
            rhi[s] = _INF if spec.upper is None else spec.upper(q) * self.rowscale[s]
        if self.user:
            self._sync_model(q)
            start = self.user_start
            for i in self.user.changed():
                coefs, lo, hi = self.user.compile(i)
                r = start + i
                scale = self.rowscale[r]
                for j in set(coefs) | set(self.user.coefs[i]):
                    new = coefs.get(j, 0.0)
                    if new != self.user.coefs[i].get(j, 0.0):
                        self.highs.changeCoeff(r, j, new * self.colscale[j] * scale)
                self.user.coefs[i] = coefs
                self.user.lower[i], self.user.upper[i] = lo, hi
            s = slice(start, start + len(self.user.rows))
            rlo[s] = self.user.lower * self.rowscale[s]
            rhi[s] = self.user.upper * self.rowscale[s]
        for name in self._freed:
            rlo[self.slices[name]], rhi[self.slices[name]] = -_INF, _INF
        rlo[np.isinf(rlo)], rhi[np.isinf(rhi)] = -_INF, _INF
        rows = np.flatnonzero((rlo != self._rlo) | (rhi != self._rhi))
        if len(rows):
            self.highs.changeRowsBounds(len(rows), rows.astype(np.int32), rlo[rows], rhi[rows])
            self._rlo, self._rhi = rlo, rhi
        if q.product != self._product:
            cost, self._constant = objective(d, self.formulation.layout, q.product)
            cost = cost * self.colscale / d.scale
            self.highs.changeColsCost(self.n, np.arange(self.n, dtype=np.int32), cost)
            self._product = q.product
        import highspy

        sense = highspy.ObjSense.kMinimize if q.case.spec.sense == "minimize" \
            else highspy.ObjSense.kMaximize
        self.highs.changeObjectiveSense(sense)

    def _algorithm(self, sense: str) -> None:
        """At scale, the measured best algorithm for this sense (unless the user chose)."""
        if not self.large:
            return
        for k, v in LARGE_OPTIONS[sense].items():
            if k not in self.user_options and self.options.get(k) != v:
                self._set_option(k, v)
                self.options[k] = v

    def solve(self, q: Query) -> float:
        """Touched tonnes into ``q.product``; :class:`SolveFailed` when not optimal."""
        import highspy

        self._update(q)
        self._algorithm(q.case.spec.sense)
        if self.highs.run() == highspy.HighsStatus.kError and \
                self.highs.getModelStatus() == highspy.HighsModelStatus.kNotset:
            # another Highs of this process ran first and made HiGHS's thread scheduler with
            # its own thread count, which refuses ours (threads=1): make it anew
            highspy.Highs.resetGlobalScheduler(True)
            self.highs.run()
        status = self.highs.modelStatusToString(self.highs.getModelStatus())
        if status != "Optimal" and self.options.get("solver") == "ipm" and \
                status not in ("Infeasible", "Unbounded", "Primal infeasible or unbounded"):
            # an interior point that HiGHS will not call optimal: settle it with simplex
            self._set_option("solver", "simplex")
            self.highs.run()
            self._set_option("solver", self.options["solver"])
            status = self.highs.modelStatusToString(self.highs.getModelStatus())
        info = self.highs.getInfo()
        self.iterations = (info.simplex_iteration_count + info.ipm_iteration_count
                           + info.crossover_iteration_count)
        if status != "Optimal":
            raise SolveFailed(status)
        value = info.objective_function_value * self.d.scale
        return float(value + self._constant @ q.focal)

    def touched(self) -> np.ndarray:
        """Touched tonnes per arc in the last solution."""
        x = np.asarray(self.highs.getSolution().col_value) * self.colscale
        d = self.d
        if self.formulation.layout == FLOW:
            return x
        share = np.where(d.interior, 0.0, self._query.focal)
        share[d.interior_idx] = x
        ends = np.where(d.uncertain[d.src], d.tgt, d.src)
        return d.tonnes * share[ends]

    @contextmanager
    def without(self, families: Iterable[str]):
        """Solve with these families' rows free (diagnosing an infeasible LP)."""
        before = set(self._freed)
        self._freed |= set(families)
        try:
            yield self
        finally:
            self._freed = before

"""Persistent HiGHS fed the Pyomo model's matrix once; re-solves change only bounds and costs.

Pyomo's appsi interface walks every constraint expression in Python when a model is attached
and removes constraints one at a time, which dominates at 10^5 arcs. Here Pyomo's own
standard-form compiler turns the model into a sparse matrix once; afterwards a changed mutable
parameter re-evaluates the bounds of just the rows that use it (from the Pyomo expressions, so the
model stays the single statement of the LP) and HiGHS gets them in one bulk call, warm-starting
from its last basis.
"""

from __future__ import annotations

from collections.abc import Iterable

import highspy
import numpy as np
import pyomo.environ as pyo
from pyomo.repn import generate_standard_repn
from pyomo.repn.plugins.standard_form import LinearStandardFormCompiler

_INF = highspy.kHighsInf


def _bound(value) -> float | None:
    return None if value is None else float(value)


class MatrixHighs:
    """One HiGHS instance holding a compiled Pyomo LP.

    Every constraint must be active at compile time; switch rules with mutable parameters in
    their bounds rather than by deactivating them (the matrix keeps its rows).
    """

    def __init__(self, model: pyo.ConcreteModel, threads: int = 1):
        self.model = model
        info = LinearStandardFormCompiler().write(model, mixed_form=True)
        # A ranged row appears twice (once per bound); keep one row per constraint.
        first: dict[int, int] = {}
        cons, offsets, lower, upper = [], [], [], []
        for i, (con, mult) in enumerate(info.rows):
            if id(con) in first:
                continue
            first[id(con)] = i
            cons.append(con)
            lb, ub = _bound(con.lb), _bound(con.ub)
            offset = (lb if mult == -1 else ub) - float(info.rhs[i])  # a constant of the body
            offsets.append(offset)
            lower.append(-_INF if lb is None else lb - offset)
            upper.append(_INF if ub is None else ub - offset)
        keep = np.fromiter(first.values(), dtype=np.int64, count=len(first))
        matrix = info.A.tocsr()[keep].tocsc()
        self._rows = cons
        self._row_of = {id(c): k for k, c in enumerate(cons)}
        self._offset = np.asarray(offsets)
        self._columns = list(info.columns)
        self._col_of = {id(v): j for j, v in enumerate(self._columns)}

        lp = highspy.HighsLp()
        lp.num_col_ = len(self._columns)
        lp.num_row_ = len(cons)
        lp.col_cost_ = np.zeros(lp.num_col_)
        lp.col_lower_ = np.array([-_INF if v.lb is None else v.lb for v in self._columns],
                                 dtype=float)
        lp.col_upper_ = np.array([_INF if v.ub is None else v.ub for v in self._columns],
                                 dtype=float)
        lp.row_lower_, lp.row_upper_ = np.array(lower), np.array(upper)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = matrix.indptr.astype(np.int32)
        lp.a_matrix_.index_ = matrix.indices.astype(np.int32)
        lp.a_matrix_.value_ = matrix.data.astype(float)
        self.highs = highspy.Highs()
        self.highs.setOptionValue("output_flag", False)
        self.highs.setOptionValue("threads", threads)
        self.highs.passModel(lp)
        self._objective_offset = 0.0
        self._cold = True

    @property
    def num_cols(self) -> int:
        return len(self._columns)

    def _row_bounds(self, rows: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
        rows = list(rows)
        lo = np.empty(len(rows))
        hi = np.empty(len(rows))
        for k, r in enumerate(rows):
            con = self._rows[r]
            lb, ub = _bound(con.lb), _bound(con.ub)
            lo[k] = -_INF if lb is None else lb - self._offset[r]
            hi[k] = _INF if ub is None else ub - self._offset[r]
        return lo, hi

    def update_constraints(self, constraints: Iterable) -> None:
        """Re-read the bounds of these constraints (their mutable parameters changed)."""
        rows = np.array(sorted({self._row_of[id(c)] for c in constraints if id(c) in
                                self._row_of}), dtype=np.int32)
        if len(rows):
            lo, hi = self._row_bounds(rows)
            self.highs.changeRowsBounds(len(rows), rows, lo, hi)

    def set_objective(self, objective) -> None:
        """Costs and sense from a Pyomo objective over the compiled columns."""
        repn = generate_standard_repn(objective.expr, compute_values=True)
        cost = np.zeros(self.num_cols)
        for v, c in zip(repn.linear_vars, repn.linear_coefs):
            cost[self._col_of[id(v)]] += c
        self.highs.changeColsCost(self.num_cols, np.arange(self.num_cols, dtype=np.int32), cost)
        self._objective_offset = float(repn.constant)
        sense = highspy.ObjSense.kMaximize if objective.sense == pyo.maximize \
            else highspy.ObjSense.kMinimize
        self.highs.changeObjectiveSense(sense)

    def forget_basis(self) -> None:
        """Start the next solve from presolve rather than the last basis.

        After a case switch the old basis is far from optimal, and a hot start skips presolve,
        which removes the switched-off rows: at 10^5 arcs a cold start is 100x faster.
        """
        self.highs.clearSolver()
        self._cold = True

    def solve(self) -> tuple[str, float]:
        """(HiGHS model status, objective value)."""
        # Cold: primal simplex, which on these flow LPs needs ~10x fewer iterations than dual.
        # Warm (only bounds changed since the last basis): dual simplex, HiGHS's choice.
        self.highs.setOptionValue("simplex_strategy", 4 if self._cold else 0)
        self._cold = False
        self.highs.run()
        status = self.highs.getModelStatus()
        value = self.highs.getInfo().objective_function_value + self._objective_offset
        return self.highs.modelStatusToString(status), value

    def values(self, variables: Iterable) -> dict:
        """Primal values of Pyomo variables in the last solution (0 for uncompiled ones)."""
        x = self.highs.getSolution().col_value
        return {v: (x[self._col_of[id(v)]] if id(v) in self._col_of else 0.0)
                for v in variables}

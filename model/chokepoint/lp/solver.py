"""One network's LP, ready for questions: each case's formulation with its engine.

``VulnerabilityLP(network, solver, families, parameters)`` builds nothing until a case is
asked for; then the case's formulation gets an engine, kept for every later question:

- ``highspy`` (default): :class:`~chokepoint.lp.highs.HighsEngine`, the matrix fed once;
- ``network``: :class:`~chokepoint.lp.flow.FlowEngine` (max-flow and a linear system) for
  formulations of core families only; a formulation with users' families goes to ``highspy``
  and :attr:`VulnerabilityLP.notes` says so;
- any other name: that Pyomo solver on the formulation's Pyomo model.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

import numpy as np

from ..cases import Case
from ..errors import ChokepointError, SolverError, did_you_mean
from ..network import Network
from .arrays import Query, arrays, out_of_range
from .families import ConstraintFamily, check_families, check_finite, flat_parameters
from .flow import PARALLEL_MIN_ARCS, FlowEngine, serves
from .formulation import Formulation, formulations
from .highs import HighsEngine, SolveFailed

#: Solver used when a scenario names none: HiGHS via highspy, fed the matrix once.
DEFAULT_SOLVER = "highspy"
#: Arcs from which HiGHS's bound questions are answered side by side on forked workers. Two
#: interior-point solves on two workers take 1.8x less than one after the other on the
#: project's 2-core machine, but each worker holds about 90 MiB of its own at 218,242 arcs
#: (6.9 s and 498 MiB for the 200 x 7 chain against 10.4 s and 320 MiB in one process, where
#: issue 20 asks for 11 s and 400 MiB): below this size one process answers.
HIGHS_PARALLEL_MIN_ARCS = 500_000

#: The exact network-flow engine for the core families.
NETWORK_SOLVER = "network"


def family_parameters(families: Iterable[ConstraintFamily],
                      values: Mapping[str, float] | None = None,
                      where: str = "parameters") -> dict[str, float]:
    """Every declared parameter as ``family.parameter -> value`` (an indexed parameter's
    entries as ``family.parameter.KEY``): defaults, then ``values``; a key that names no
    declared parameter, or a value that is no finite number, is an error naming the key."""
    families = list(families)
    check_families(families)
    out = {f"{f.name}.{p}": v for f in families for p, v in flat_parameters(f).items()}
    for key, value in (values or {}).items():
        if key not in out:
            raise ChokepointError(f"{where}: {key!r} is no parameter of an active family"
                                  f"{did_you_mean(key, list(out))}; declared: "
                                  f"{', '.join(out) or 'none'}")
        out[key] = check_finite(value, f"{where}.{key}")
    return out


class VulnerabilityLP:
    """A network's LP in every case; ``solve`` returns touched tonnes into the product."""

    def __init__(self, network: Network, solver: str = DEFAULT_SOLVER,
                 families: Iterable[ConstraintFamily] = (),
                 parameters: Mapping[str, float] | None = None,
                 options: Mapping[str, object] | None = None, pinning: bool = False,
                 blocs: Mapping[str, Mapping] | None = None):
        self.network = network
        self.blocs = dict(blocs or {})
        self.arrays = arrays(network)
        self.solver_name = solver
        self.families = tuple(families)
        names = [f.name for f in self.families]
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise ChokepointError(f"two constraint families are named {dup!r}")
        self.parameters = family_parameters(self.families, parameters)
        self.options = dict(options or {})
        self.pinning = pinning
        self.formulations: dict[Case, Formulation] = formulations(tuple(Case), self.families,
                                                                   pinning)
        self.notes: list[str] = []
        self._engines: dict[int, object] = {}
        #: Wall-clock seconds spent building engines (at first solves) since last reset.
        self.engine_seconds = 0.0
        self._flow: FlowEngine | None = None
        self._pinned: frozenset[str] = frozenset()
        self._focal_key: frozenset[str] | None = None
        self._focal = np.zeros(self.arrays.n_nodes)
        self._query: Query | None = None
        self._last_engine = None
        self._in_range: set[str] = set()
        #: answers computed ahead on forked workers (:meth:`prefetch`), by question
        self._ahead: dict[tuple, tuple] = {}
        #: (seconds, iterations) of the last answer, where it was computed ahead
        self._served: tuple[float, int | None] | None = None
        if solver not in (DEFAULT_SOLVER, NETWORK_SOLVER):
            from .pyomo_engine import make_solver

            make_solver(solver, self.options)  # fails now, not at the first solve

    # -- engines ---------------------------------------------------------------------------

    def engine(self, case: Case):
        """The engine of ``case``'s formulation (built on first use)."""
        f = self.formulations[case]
        got = self._engines.get(id(f))
        if got is not None:
            return got
        t = time.perf_counter()
        got = self._new_engine(f)
        self._engines[id(f)] = got
        self.engine_seconds += time.perf_counter() - t
        return got

    def _new_engine(self, f: Formulation):
        if self.solver_name == NETWORK_SOLVER and serves(f):
            if self._flow is None:
                self._flow = FlowEngine(self.arrays)
            got = self._flow
        elif self.solver_name in (DEFAULT_SOLVER, NETWORK_SOLVER):
            if self.solver_name == NETWORK_SOLVER:
                why = ", ".join(x.name for x in f.user) or "the pinned split"
                self.notes.append(f"solver network serves the core families only: "
                                  f"{f.name} ({why}) is solved by highspy")
            got = HighsEngine(self.arrays, f, self.parameters,
                              self.options if self.solver_name == DEFAULT_SOLVER else None,
                              blocs=self.blocs)
        else:
            from .pyomo_engine import PyomoEngine

            got = PyomoEngine(self.arrays, f, self.solver_name, self.parameters, self.options,
                              blocs=self.blocs)
        return got

    def set_parameters(self, values: Mapping[str, float]) -> None:
        """New values for declared parameters; the next solves use them without a rebuild."""
        self.parameters = family_parameters(self.families, {**self.parameters, **values})
        for e in self._engines.values():
            if hasattr(e, "set_parameters"):
                e.set_parameters(self.parameters)

    def model(self, case: Case, focal_nodes: Iterable[str] | None = None,
              product: str | None = None, clean: Iterable[str] = ()):
        """The Pyomo model of ``case``'s formulation (a fresh copy, every family built); with
        a focal set and a product, set to state exactly that question's LP (the one the engines
        solve, in tonnes), ready to write or to solve with any Pyomo solver."""
        from .families import Bounds, Rows
        from .model import build_model
        from .pyomo_engine import apply_query

        f = self.formulations[case]
        m = build_model(self.arrays, f, self.parameters, blocs=self.blocs)
        if product is not None:
            built = [x.build(self.arrays) for x in f.core]
            q = self.query(focal_nodes or (), product, case, clean)
            apply_query(m, self.arrays, f, q, [b for b in built if isinstance(b, Bounds)],
                        [(x.name, b) for x, b in zip(f.core, built) if isinstance(b, Rows)])
        return m

    # -- questions ---------------------------------------------------------------------------

    def pin(self, nodes: Iterable[str]) -> None:
        """Pin the split of these interior nodes in the bound cases (needs ``pinning=True``)."""
        if not self.pinning:
            raise ValueError("VulnerabilityLP(..., pinning=True) is needed to pin splits")
        self._pinned = frozenset(nodes)

    def query(self, focal_nodes: Iterable[str], product: str, case: Case,
              clean: Iterable[str] = ()) -> Query:
        focal_nodes = frozenset(focal_nodes)
        if focal_nodes != self._focal_key:
            self._focal = self.arrays.node_mask(focal_nodes)
            self._focal_key = focal_nodes
        return Query(self._focal, product, case, frozenset(clean), self._pinned)

    def solve(self, focal_nodes: Iterable[str], product: str, case: Case,
              clean: Iterable[str] = ()) -> float:
        """Touched tonnes into ``product`` for this focal node set and case; uncertain sources
        in ``clean`` carry no touched material even in pessimistic B. A solve that ends without
        an optimum raises :class:`SolveFailed` (see :meth:`diagnose`)."""
        q = self.query(focal_nodes, product, case, clean)
        engine = self.engine(case)
        if not isinstance(engine, FlowEngine) and product not in self._in_range:
            why = out_of_range(self.arrays, product)
            if why:
                raise SolverError(why)
            self._in_range.add(product)
        self._query, self._last_engine, self._served = q, engine, None
        got = self._ahead.pop((self._focal_key, product, case), None) if not clean else None
        if got is not None:
            (ok, result, iterations), seconds = got
            self._served = (seconds, iterations)
            if not ok:
                raise result
            return result
        try:
            return engine.solve(q)
        finally:
            if isinstance(engine, FlowEngine):
                self._count_build(engine)

    def prefetch(self, questions: Iterable[tuple[Iterable[str], str, Case]],
                 workers: int) -> float:
        """Let these ``(focal nodes, product, case)`` questions be answered ahead, side by side
        on up to ``workers`` forked processes, where that pays: the bound questions of the
        network engine on a network of :data:`~chokepoint.lp.flow.PARALLEL_MIN_ARCS` arcs or
        more, of HiGHS on one of :data:`HIGHS_PARALLEL_MIN_ARCS` or more. Later solves of them
        return those answers. The seconds it took."""
        from .forked import answer, can_fork

        t = time.perf_counter()
        if workers < 2 or not can_fork():
            return 0.0
        todo = [x for x in dict.fromkeys((frozenset(n), p, c) for n, p, c in questions)
                if x[2] is not Case.PROPORTIONAL and x not in self._ahead
                and self.arrays.n_arcs >= self._forked_from(x[2])]
        workers = min(workers, len(todo))
        if workers < 2:
            return time.perf_counter() - t
        for case in dict.fromkeys(x[2] for x in todo):
            self.engine(case)  # built before the fork: the workers share them
        flow = self._flow if any(self._served_by_flow(x[2]) for x in todo) else None
        if flow is not None:
            flow.graph
            self._count_build(flow)
        who = "the network engine" if self.solver_name == NETWORK_SOLVER else self.solver_name
        got = answer(lambda i: self._answer(*todo[i]), len(todo), workers,
                     f"{self.network.origin}: {who}",
                     meanwhile=flow._levels if flow is not None else None)  # its own share
        self._ahead.update(zip(todo, got))
        return time.perf_counter() - t

    def _served_by_flow(self, case: Case) -> bool:
        return self.solver_name == NETWORK_SOLVER and serves(self.formulations[case])

    def _forked_from(self, case: Case) -> float:
        """Arcs from which a bound question of ``case`` is answered on a forked worker (a
        Pyomo solver's never: its solves run programs or libraries of their own)."""
        if self._served_by_flow(case):
            return PARALLEL_MIN_ARCS
        if self.solver_name in (DEFAULT_SOLVER, NETWORK_SOLVER):
            return HIGHS_PARALLEL_MIN_ARCS
        return float("inf")

    def _count_build(self, engine: FlowEngine) -> None:
        """The network engine's graph is built at its first bound question: its seconds count
        as building."""
        self.engine_seconds += engine.build_seconds
        engine.build_seconds = 0.0

    def _answer(self, nodes: frozenset, product: str, case: Case) -> tuple:
        """In a forked worker: (answered, touched tonnes or the error, iterations)."""
        try:
            value = self.solve(nodes, product, case)
            return True, value, getattr(self._last_engine, "iterations", None)
        except (SolveFailed, ChokepointError) as e:
            return False, e, getattr(self._last_engine, "iterations", None)

    def last_seconds(self) -> float | None:
        """Seconds the last answer took where it was computed ahead (else None)."""
        return self._served[0] if self._served is not None else None

    def last_solve(self) -> tuple[str, int | None]:
        """The engine that answered the last question (``highspy``, ``network`` or the Pyomo
        solver's name: ``network`` hands a user family's case to ``highspy``) and the
        iterations it reports (None where it reports none)."""
        e = self._last_engine
        return (getattr(e, "name", type(e).__name__) if e is not None else "",
                self._served[1] if self._served is not None else getattr(e, "iterations", None))

    def release_cap(self) -> float:
        """P_F of the last question (tonnes)."""
        q = self._query
        return self.arrays.release_cap(q.focal, q.product) if q is not None else 0.0

    def touched_flows(self) -> dict[tuple[str, str], float]:
        """Touched tonnes per arc in the last solution."""
        if self._served is not None:  # answered by a worker: this process solves it again
            self._last_engine.solve(self._query)
            self._served = None
        x = self._last_engine.touched()
        return dict(zip(self.arrays.arc_labels, map(float, x)))

    def diagnose(self, focal_nodes: Iterable[str], product: str, case: Case,
                 status: str) -> str:
        """Which users' families make this question infeasible: each is dropped in turn (its
        rows freed), then all together."""
        f = self.formulations[case]
        engine = self.engine(case)
        q = self.query(focal_nodes, product, case)
        user = [x.name for x in f.user]
        if not user:
            return f"no user family is active in {case.value}: the core LP itself is " \
                   f"{status.lower()}"

        def solvable(names) -> bool:
            with engine.without(names):
                try:
                    engine.solve(q)
                    return True
                except SolveFailed:
                    return False

        culprits = [n for n in user if solvable([n])]
        if culprits:
            return "; ".join(f"without {n} it solves: {n} makes it {status.lower()}"
                             for n in culprits)
        if solvable(user):
            return f"dropping any one family is not enough, but without all of " \
                   f"{', '.join(user)} it solves: together they make it {status.lower()}"
        return f"it stays {status.lower()} without {', '.join(user)}: the core LP itself is"


__all__ = ["DEFAULT_SOLVER", "NETWORK_SOLVER", "SolveFailed", "SolverError",
           "VulnerabilityLP", "family_parameters"]

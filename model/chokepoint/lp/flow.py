"""The exact network-flow engine (``solver: network``) for the core families.

Each bound case is a maximum flow (igraph's push-relabel, in C) on the network with a super
source: pessimistic A from the focal nodes, each up to its outflow, through non-focal nodes to
the product; pessimistic B the same plus the uncertain sources, each up to min(outflow, P_F);
optimistic is total supply minus the maximum *clean* flow, from the non-focal sources through
non-focal nodes. Forcing every focal (or clean) source to ship all it has never lowers these
maxima, because a balanced node can always pass on what it receives, so they equal the LP's
optima. The proportional case is the share system ``s_n v_obs - sum v_a s_src(a) = focal
inflow`` over the non-focal observed interior nodes, solved as one sparse linear system.

The graph is built once per network, without the arcs from primary sources: a source
receives nothing and its supply is its outflow, so each of its arcs binds alone, and the tonnes
the question's sources send into a node become the capacity of the super source's arc to it (a
sixth fewer arcs for igraph on a 7-stage chain). A question only changes the capacities of the
super source's arcs and of the arcs into focal nodes (no flow enters a focal node: the clean
flow avoids them, and a focal node's own supply fills its outflow; an unseeded source sends
nothing because sources receive no arcs). Users' families and the pinned split are not flows:
formulations with them go to the LP (the caller says so).
"""

from __future__ import annotations

import sys
import time

import numpy as np
import scipy.sparse as sp

from ..cases import Case
from .arrays import NetworkArrays, Query
from .formulation import Formulation


#: Arcs from which the engine's bound questions are answered side by side on forked workers
#: (:meth:`VulnerabilityLP.prefetch`): a max flow's fixed cost (igraph copies and sorts the
#: graph per call, ~0.9 s at 5.4 million arcs whatever the flow) then outweighs a fork's
#: (~0.05 s and the pages a worker writes).
PARALLEL_MIN_ARCS = 1_000_000

#: igraph's drawing backends, imported by ``import igraph`` when installed
_PLOTTING = ("matplotlib", "plotly")


def _igraph():
    """igraph's graphs and flows without its plotting backends.

    ``import igraph`` imports its drawing package, which imports ``matplotlib.pyplot`` and
    plotly when they are installed (0.3-0.6 s; 0.03 s without), and igraph has no option
    against it. Its drawing package treats both as optional (a stand-in module that says
    "install matplotlib" when drawn with), so while igraph is first imported they are marked
    absent (``None`` in ``sys.modules``) and then unmarked: chokepoint and later imports use
    them as usual. The one thing lost in this process is drawing an igraph graph with them
    (``igraph.plot(g, target=ax)``); import igraph before chokepoint's network engine to keep
    it.
    """
    if "igraph" in sys.modules:
        return sys.modules["igraph"]
    hidden = [m for m in _PLOTTING if m not in sys.modules]
    for m in hidden:
        sys.modules[m] = None
    try:
        import igraph
    finally:
        for m in hidden:
            if sys.modules.get(m, 0) is None:
                del sys.modules[m]
    return igraph


def serves(formulation: Formulation) -> bool:
    """Whether the engine computes this formulation exactly (core families only)."""
    return not formulation.user and not any(f.optional for f in formulation.core)


class FlowEngine:
    """Max-flow and linear-system answers to the queries of one network."""

    name = "network"

    def __init__(self, d: NetworkArrays):
        self.d = d
        self.source = d.n_nodes  # the super source; it has an arc to every node
        self._graph = None
        self._last: np.ndarray | None = None  # the proportional case's shares per node
        #: seconds spent building the graph, not yet reported (the caller counts it as build)
        self.build_seconds = 0.0

    @property
    def graph(self):
        """The network with the super source (built at the first bound question: the
        proportional case needs no graph)."""
        if self._graph is None:
            t = time.perf_counter()
            igraph = _igraph()
            d, n = self.d, self.d.n_nodes
            # A primary source receives nothing and its supply is its outflow, so its arcs
            # bind one by one: they are folded into the super source's arcs (the tonnes the
            # question's sources send into each node), a sixth of a chain's arcs
            kept = np.flatnonzero(~d.primary[d.src])
            folded = np.flatnonzero(d.primary[d.src])
            self._primary_into = sp.csr_matrix(
                (d.tonnes[folded], (d.tgt[folded], d.src[folded])), shape=(n, n))
            self._kept_tgt = d.tgt[kept]
            self._kept_capacity = d.tonnes[kept] / d.scale
            # igraph reads Python pairs faster than a NumPy array, which it converts element
            # by element, and pairs from a zip faster than a list of them (zip reuses each
            # pair once igraph has read it): 5.4 million arcs in 1.3 s, against 2.2 s from a
            # list and ~8 s from an array
            ends = (np.r_[d.src[kept], np.full(n, n)].tolist(),
                    np.r_[self._kept_tgt, np.arange(n)].tolist())
            self._graph = igraph.Graph(n=n + 1, edges=zip(*ends), directed=True)
            # A question changes few capacities (the super source's arcs and the arcs into
            # focal nodes), so one Python list of them is kept and patched per question:
            # converting 5 million floats per question cost more than a tenth of a max flow.
            self._capacity = self._kept_capacity.tolist() + [0.0] * n
            self.build_seconds += time.perf_counter() - t
        return self._graph

    def solve(self, q: Query) -> float:
        if q.case is Case.PROPORTIONAL:
            return self._proportional(q)
        return self._bound(q)

    def _bound(self, q: Query) -> float:
        d = self.d
        graph = self.graph
        focal = q.focal > 0
        # Flow never enters a focal node: in the optimistic case the clean flow avoids them; in
        # the pessimistic ones each focal node's own supply already fills its outflow. Sources
        # receive no arcs (the network's validation), so an unseeded source sends nothing.
        cut = np.flatnonzero(focal[self._kept_tgt])
        clean = q.case is Case.OPTIMISTIC
        if clean:
            seed_cap = np.where(d.uncertain & ~focal, d.outflow, 0.0)
            sources = d.primary & ~focal
        else:
            seed_cap = np.where(focal & ~d.primary, d.outflow, 0.0)
            sources = d.primary & focal
            if q.case is Case.PESSIMISTIC_B:
                cap = d.release_cap(q.focal, q.product)
                released = d.uncertain.copy()
                if q.clean:
                    released &= ~d.node_mask(q.clean).astype(bool)
                seed_cap = np.where(released, np.minimum(d.outflow, cap), seed_cap)
        seed_cap += np.where(focal, 0.0, self._primary_into @ sources.astype(float))
        capacity = self._capacity
        m = len(self._kept_tgt)
        capacity[m:] = (seed_cap / d.scale).tolist()
        arcs = cut.tolist()
        for i in arcs:
            capacity[i] = 0.0
        try:
            value = graph.maxflow_value(self.source, d.product_index(q.product),
                                        capacity=capacity) * d.scale
        finally:
            for i, c in zip(arcs, self._kept_capacity[cut].tolist()):
                capacity[i] = c
        self._last = None  # a maximum flow is not the LP's touched flow on every arc
        return d.supply(q.product) - value if clean else value

    def _proportional(self, q: Query) -> float:
        d = self.d
        focal = q.focal > 0
        share = np.where(focal, 1.0, 0.0)  # sources: 1 if focal; interior nodes solved below
        levels = self._levels()
        if levels is not None:
            # forward substitution, level by level: s_n = (focal primary inflow of n + sum of
            # v_mn s_m over interior senders m) / obs_n, for the non-focal observed nodes
            inflow = d.primary_inflow @ q.focal
            for rows, senders in levels:
                nodes = d.observed_idx[rows]
                free = ~focal[nodes]
                value = (inflow[rows] + senders @ share) / d.observed_inflow[nodes]
                share[nodes[free]] = value[free]
        else:
            self._solve_shares(q, focal, share)
        self._last = share
        into = np.flatnonzero(d.into(q.product))
        return float((d.tonnes[into] * share[self._share_ends(into)]).sum())

    def _share_ends(self, arcs: np.ndarray | slice = slice(None)) -> np.ndarray:
        """The node whose share an arc's tonnes carry: its source (its target for an arc from an
        uncertain source, which carries its target's share)."""
        d = self.d
        return np.where(d.uncertain[d.src[arcs]], d.tgt[arcs], d.src[arcs])

    def _solve_shares(self, q: Query, focal: np.ndarray, share: np.ndarray) -> None:
        """The share system as one sparse linear system (a network with a loop)."""
        d = self.d
        keep = ~focal[d.observed_idx]
        unknown = d.observed_idx[keep]
        if len(unknown):
            # obs_n s_n - sum_m v_mn s_m = focal primary inflow of n, for the non-focal observed
            # interior nodes; focal interior nodes are fixed at 1, unobserved ones at 0
            system = d.share_matrix[keep]
            fixed = np.where(focal[d.interior_idx], 1.0, 0.0)
            rhs = d.primary_inflow[keep] @ q.focal - system @ fixed
            from scipy.sparse.linalg import spsolve  # 0.1 s to import: only here

            a = sp.csc_matrix(system[:, d.interior_pos[unknown]])
            share[unknown] = np.atleast_1d(spsolve(a, rhs))

    def _levels(self) -> list[tuple[np.ndarray, sp.csr_matrix]] | None:
        """The observed interior nodes in levels, each fed only by earlier ones (None if the
        network has a loop through them), with each level's rows of tonnes from interior
        senders (over every node). A node's share depends only on its senders', so in a
        supply chain without loops the share system is solved by substitution, one sparse
        product per level: O(arcs), where a general factorisation of the 7,000 x 7,000 system
        of a 1,000 x 7 chain (4.5 million entries) takes seconds."""
        if hasattr(self, "_level_rows"):
            return self._level_rows
        d = self.d
        row = np.full(d.n_nodes, -1)
        row[d.observed_idx] = np.arange(len(d.observed_idx))
        arcs = np.flatnonzero(d.interior[d.src] & (row[d.tgt] >= 0))
        senders = sp.csr_matrix((d.tonnes[arcs], (row[d.tgt[arcs]], d.src[arcs])),
                                shape=(len(d.observed_idx), d.n_nodes))
        done = np.zeros(len(d.observed_idx), dtype=bool)
        pending = np.zeros(d.n_nodes)  # 1 at the unknowns not yet solved
        levels = []
        while not done.all():
            # ready: every sender solved (a sender by zero tonnes is no dependency: its share
            # adds nothing)
            pending[d.observed_idx] = ~done
            ready = ~done & (senders @ pending == 0)
            if not ready.any():  # a loop: no order in which every sender comes first
                self._level_rows = None
                return None
            rows = np.flatnonzero(ready)
            levels.append((rows, senders[rows]))
            done |= ready
        self._level_rows = levels
        return levels

    def touched(self) -> np.ndarray:
        if self._last is None:
            raise ValueError("touched flow per arc in the bound cases comes from the LP only")
        return self.d.tonnes * self._last[self._share_ends()]


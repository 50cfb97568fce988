"""The exact network-flow engine (``solver: network``) for the core families.

Each bound case is a maximum flow (igraph's push-relabel, in C) on the network with a super
source: pessimistic A from the focal nodes, each up to its outflow, through non-focal nodes to
the product; pessimistic B the same plus the uncertain sources, each up to min(outflow, P_F);
optimistic is total supply minus the maximum *clean* flow, from the non-focal sources through
non-focal nodes. Forcing every focal (or clean) source to ship all it has never lowers these
maxima, because a balanced node can always pass on what it receives, so they equal the LP's
optima. The proportional case is the share system ``s_n v_obs - sum v_a s_src(a) = focal
inflow`` over the non-focal observed interior nodes, solved as one sparse linear system.

The graph is built once per network; a question only changes the capacity vector. Users'
families and the pinned split are not flows: formulations with them go to the LP (the caller
says so).
"""

from __future__ import annotations

import sys

import numpy as np
import scipy.sparse as sp

from ..cases import Case
from .arrays import NetworkArrays, Query
from .formulation import Formulation


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
        igraph = _igraph()
        self.d = d
        n = d.n_nodes
        self.source = n  # the super source; it has an arc to every node
        # igraph reads an edge list of Python pairs 3-7 times faster than a NumPy array
        # (which it converts element by element): 5.4 million arcs in ~2 s instead of ~10 s
        ends = (np.r_[d.src, np.full(n, n)].tolist(), np.r_[d.tgt, np.arange(n)].tolist())
        self.graph = igraph.Graph(n=n + 1, edges=list(zip(*ends)), directed=True)
        self._last: np.ndarray | None = None

    def solve(self, q: Query) -> float:
        if q.case is Case.PROPORTIONAL:
            return self._proportional(q)
        return self._bound(q)

    def _bound(self, q: Query) -> float:
        d = self.d
        focal = q.focal > 0
        into_focal = focal[d.tgt]
        clean = q.case is Case.OPTIMISTIC
        if clean:
            arc_on = ~into_focal & ~focal[d.src]
            seed = (d.primary | d.uncertain) & ~focal
            seed_cap = np.where(seed, d.outflow, 0.0)
        else:
            source_node = d.primary | d.uncertain
            arc_on = ~into_focal & ~(source_node[d.src] & ~focal[d.src])
            seed_cap = np.where(focal, d.outflow, 0.0)
            if q.case is Case.PESSIMISTIC_B:
                cap = d.release_cap(q.focal, q.product)
                released = d.uncertain.copy()
                if q.clean:
                    released &= ~d.node_mask(q.clean).astype(bool)
                arc_on |= released[d.src] & ~into_focal
                seed_cap = np.where(released, np.minimum(d.outflow, cap), seed_cap)
        capacity = np.r_[np.where(arc_on, d.tonnes, 0.0), seed_cap] / d.scale
        k = d.product_index(q.product)
        value = self.graph.maxflow_value(self.source, k, capacity=capacity.tolist()) * d.scale
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
        ends = np.where(d.uncertain[d.src], d.tgt, d.src)
        self._last = d.tonnes * share[ends]
        return float(self._last[d.into(q.product)].sum())

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
        observed = arcs[row[d.src[arcs]] >= 0]  # dependencies among the unknowns
        waits = sp.csr_matrix((np.ones(len(observed)), (row[d.tgt[observed]],
                                                        row[d.src[observed]])),
                              shape=(len(d.observed_idx),) * 2)
        done = np.zeros(len(d.observed_idx), dtype=bool)
        levels = []
        while not done.all():
            ready = ~done & (waits @ (~done).astype(float) == 0)
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
        return self._last

"""A network as arrays: node and arc positions, stage masks and the sparse matrices the LP's
families and every engine share. Built once per network (vectorised) and cached on it.

Tonnages stay in tonnes of contained element here; ``scale`` is the engines' unit of tonnage
(see :func:`_unit`), by which they divide them, so that their LPs do not depend on the units of
the data (an index is a ratio of tonnages, so it does not change).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..network import Network, Stage


@dataclass(frozen=True)
class Query:
    """One question put to the LP: focal membership per node (0/1), the product measured, the
    case, uncertain sources held clean even in pessimistic B, and interior nodes whose split is
    pinned pro rata (``pinned_split``)."""

    focal: np.ndarray
    product: str
    case: object  # Case; typed loosely to keep this module free of the case vocabulary
    clean: frozenset[str] = frozenset()
    pinned: frozenset[str] = frozenset()


class NetworkArrays:
    """Positions, masks and matrices of one network. Node order is ``network.nodes``; arc order
    is ``network.arcs``."""

    def __init__(self, network: Network):
        self.network = network
        nodes = network.nodes
        self.names: pd.Index = nodes.index
        self.n_nodes = len(nodes)
        self.n_arcs = len(network.arcs)
        stage = nodes["stage"].to_numpy()
        self.stage = stage
        is_ = {s: stage == s for s in Stage}
        self.primary = is_[Stage.MINE] | is_[Stage.RECYCLING]
        self.interior = np.fromiter((s.is_interior for s in stage), bool, self.n_nodes)
        self.uncertain = is_[Stage.UNCERTAIN_SOURCE]
        self.product = is_[Stage.PRODUCT]
        self.refining = is_[Stage.REFINING]
        self.cathode_pool = is_[Stage.CATHODE_POOL]
        self.src, self.tgt = network.positions()
        self.tonnes = network.arcs["tonnes"].to_numpy(dtype=float)
        self.outflow = np.bincount(self.src, self.tonnes, self.n_nodes)
        self.inflow = np.bincount(self.tgt, self.tonnes, self.n_nodes)
        observed = ~self.uncertain[self.src]
        self.observed_inflow = np.bincount(self.tgt, np.where(observed, self.tonnes, 0.0),
                                           self.n_nodes)
        self.scale = _unit(self.tonnes, np.bincount(self.tgt[self.product[self.tgt]],
                                                    self.tonnes[self.product[self.tgt]],
                                                    self.n_nodes))
        #: Interior nodes in row order of the per-node families.
        self.interior_idx = np.flatnonzero(self.interior)
        self.uncertain_idx = np.flatnonzero(self.uncertain)
        self.observed_idx = self.interior_idx[self.observed_inflow[self.interior_idx] > 0]
        self.unobserved_idx = self.interior_idx[self.observed_inflow[self.interior_idx] <= 0]
        #: Outflow minus inflow of each interior node (the data's rounding imbalance).
        self.imbalance = (self.outflow - self.inflow)[self.interior_idx]
        # arc masks
        self.ownable_arc = (self.primary | self.interior)[self.src]
        self.mine_arc = self.primary[self.src]
        self.uncertain_arc = self.uncertain[self.src]
        self.product_arc = self.product[self.tgt]
        self.interior_out_arc = self.interior[self.src]

    # -- names and positions -------------------------------------------------------------

    @cached_property
    def arc_labels(self) -> list[tuple[str, str]]:
        arcs = self.network.arcs
        return list(zip(arcs["source"], arcs["target"]))

    def node_mask(self, names) -> np.ndarray:
        """0/1 vector over nodes, 1 on ``names`` (unknown names are ignored)."""
        f = np.zeros(self.n_nodes)
        if names:
            pos = self.names.get_indexer(list(names))
            f[pos[pos >= 0]] = 1.0
        return f

    def product_index(self, product: str) -> int:
        return int(self.names.get_loc(product))

    def into(self, product: str) -> np.ndarray:
        """Mask of the arcs into ``product``."""
        return self.tgt == self.product_index(product)

    def supply(self, product: str) -> float:
        return float(self.tonnes[self.into(product)].sum())

    def release_cap(self, focal: np.ndarray, product: str) -> float:
        """P_F: the focal set's mine (and recycling) and refining output plus its cathode pools'
        flow into ``product`` (tonnes)."""
        own = (self.primary | self.refining) & (focal > 0)
        into = self.into(product) & self.cathode_pool[self.src] & (focal[self.src] > 0)
        return float(self.outflow[own].sum() + self.tonnes[into].sum())

    # -- matrices (rows x columns, tonnes) -----------------------------------------------

    @cached_property
    def balance(self) -> sp.csr_matrix:
        """Interior nodes x arcs: +1 on arcs out of the node, -1 on arcs into it."""
        arcs = np.arange(self.n_arcs)
        inc = sp.csr_matrix((np.r_[np.ones(self.n_arcs), -np.ones(self.n_arcs)],
                             (np.r_[self.src, self.tgt], np.r_[arcs, arcs])),
                            shape=(self.n_nodes, self.n_arcs))
        return inc[self.interior_idx]

    @cached_property
    def release(self) -> sp.csr_matrix:
        """Uncertain sources x arcs: 1 on each source's arcs."""
        row = np.full(self.n_nodes, -1)
        row[self.uncertain_idx] = np.arange(len(self.uncertain_idx))
        arcs = np.flatnonzero(self.uncertain_arc)
        return sp.csr_matrix((np.ones(len(arcs)), (row[self.src[arcs]], arcs)),
                             shape=(len(self.uncertain_idx), self.n_arcs))

    @cached_property
    def interior_pos(self) -> np.ndarray:
        """Node position -> column of the share variable (-1 for non-interior nodes)."""
        pos = np.full(self.n_nodes, -1)
        pos[self.interior_idx] = np.arange(len(self.interior_idx))
        return pos

    @cached_property
    def share_matrix(self) -> sp.csr_matrix:
        """Observed interior nodes x interior nodes: observed inflow on the diagonal minus the
        tonnes each interior node sends into the row's node (not from uncertain sources)."""
        arcs = np.flatnonzero(self.interior[self.tgt] & self.interior[self.src])
        rows = self.interior_pos[self.tgt[arcs]]
        cols = self.interior_pos[self.src[arcs]]
        k = len(self.interior_idx)
        diag = sp.diags(self.observed_inflow[self.interior_idx])
        m = (diag - sp.csr_matrix((self.tonnes[arcs], (rows, cols)), shape=(k, k))).tocsr()
        return m[self.interior_pos[self.observed_idx]]

    @cached_property
    def primary_inflow(self) -> sp.csr_matrix:
        """Observed interior nodes x nodes: tonnes each primary source sends into the node."""
        arcs = np.flatnonzero(self.interior[self.tgt] & self.primary[self.src])
        row = np.full(self.n_nodes, -1)
        row[self.observed_idx] = np.arange(len(self.observed_idx))
        return sp.csr_matrix((self.tonnes[arcs], (row[self.tgt[arcs]], self.src[arcs])),
                             shape=(len(self.observed_idx), self.n_nodes))

    @cached_property
    def pin_pairs(self) -> np.ndarray:
        """Consecutive pairs (a, b) of arcs out of the same interior node with two or more
        arcs: the rows of ``pinned_split``; columns arc a, arc b, node."""
        arcs = np.flatnonzero(self.interior_out_arc)
        arcs = arcs[np.argsort(self.src[arcs], kind="stable")]
        same = self.src[arcs[1:]] == self.src[arcs[:-1]]
        return np.c_[arcs[:-1][same], arcs[1:][same], self.src[arcs[1:][same]]]

    @cached_property
    def pin_matrix(self) -> sp.csr_matrix:
        """``pinned_split`` rows: v_b x_a - v_a x_b for each pair (a, b)."""
        a, b, _ = self.pin_pairs.T if len(self.pin_pairs) else (np.zeros(0, int),) * 3
        k = len(a)
        rows = np.r_[np.arange(k), np.arange(k)]
        return sp.csr_matrix((np.r_[self.tonnes[b], -self.tonnes[a]], (rows, np.r_[a, b])),
                             shape=(k, self.n_arcs))


def _unit(tonnes: np.ndarray, supply: np.ndarray) -> float:
    """The engines' unit of tonnage: a power of two (so scaling is exact) near a thousandth of
    the smallest product supply, so that a solver's absolute tolerance of 1e-7 units is at most
    1e-10 of any index; but no less than a 10^-9 of the largest arc, so no bound exceeds 1e9."""
    largest = float(tonnes.max()) if len(tonnes) else 0.0
    positive = supply[supply > 0]
    if largest <= 0 or not len(positive):
        return 1.0
    unit = max(float(positive.min()) / 1e3, largest / 1e9)
    return float(2.0 ** np.round(np.log2(unit)))


#: Most an LP solver is trusted with: the largest arc at most this many times the product's
#: supply. Beyond 10^6 the unit grows with the largest arc (no bound above 10^9 units), so a
#: solver's absolute tolerance of 1e-7 units is 1e-16 x (largest / supply) of the index, and
#: double precision alone loses as much at a node carrying the largest arc: at 10^9 that is
#: 1e-7 of an index; at 8 x 10^14 HiGHS once answered 100% where 93.19% is right.
LP_RANGE = 1e9


def out_of_range(d: NetworkArrays, product: str, limit: float = LP_RANGE) -> str | None:
    """Why an LP solver cannot resolve indices of ``product`` on this network (its largest
    arcs dwarf the product's supply), naming the arcs; None when it can."""
    supply = d.supply(product)
    if supply <= 0 or not d.n_arcs or float(d.tonnes.max()) <= limit * supply:
        return None
    big = np.flatnonzero(d.tonnes > limit * supply)
    big = big[np.argsort(-d.tonnes[big], kind="stable")]
    named = ", ".join(f"{d.names[d.src[a]]} -> {d.names[d.tgt[a]]} ({d.tonnes[a]:.3g} t)"
                      for a in big[:3]) + (f" and {len(big) - 3} more" if len(big) > 3 else "")
    return (f"{d.network.origin}: {named} carr{'ies' if len(big) == 1 else 'y'} more than "
            f"{limit:.0e} times {product}'s supply of {supply:.4g} t: an LP solver cannot "
            f"resolve the indices at that range of magnitudes (its tolerances and double "
            f"precision lose {product}'s flows beside such arcs); check the units of the "
            "data, or use solver: network, which is exact at any magnitude")


def arrays(network: Network) -> NetworkArrays:
    """The network's arrays, built once and kept with it."""
    got = network._cache.get("arrays")
    if got is None:
        got = network._cache["arrays"] = NetworkArrays(network)
    return got

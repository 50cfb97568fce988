"""Independent computations of the index, without the LP: references for tests and benchmarks.

- optimistic, pessimistic A and B are max-flow problems (networkx):
  pessimistic A = max flow from the focal nodes (each up to its outflow) to the product, through
  non-focal nodes; pessimistic B adds the uncertain sources, each up to min(outflow, P_F);
  optimistic = supply - max *clean* flow, from non-focal sources through non-focal nodes.
  Forcing every focal (or clean) source to ship all it has never lowers these maxima, because a
  balanced node can always pass on what it receives.
- proportional is a linear system: s_n = sum(v_a t(src a) for observed a into n) / observed in.
"""

from __future__ import annotations

import numpy as np

from ..cases import Case
from ..network import Network, Stage

_SOURCE, _SINK = "__source__", "__sink__"


def _supply(net: Network, product: str) -> float:
    return net.product_supply(product)


def release_cap(net: Network, focal: frozenset[str], product: str) -> float:
    """P_F: focal mine and refining output plus focal cathode output into the product."""
    stage, flow = net.nodes["stage"], net.node_flow()
    cap = sum(flow.outflow[n] for n in focal if stage[n].is_primary or stage[n] is Stage.REFINING)
    arcs = net.arcs
    into = arcs[(arcs["target"] == product) & arcs["source"].isin(
        [n for n in focal if stage[n] is Stage.CATHODE_POOL])]
    return float(cap + into["tonnes"].sum())


def maxflow_vi(net: Network, focal: frozenset[str], product: str, case: Case) -> float:
    """The index by max-flow, for the optimistic and pessimistic cases."""
    import networkx as nx

    stage, flow = net.nodes["stage"], net.node_flow()
    g = nx.DiGraph()
    g.add_edge(product, _SINK)  # uncapacitated
    clean = case is Case.OPTIMISTIC
    for s, t, v in zip(net.arcs["source"], net.arcs["target"], net.arcs["tonnes"]):
        if t in focal:
            continue  # what enters a focal node is absorbed: its outflow is counted anyway
        if clean and s in focal:
            continue  # clean flow never leaves a focal node
        if not clean and stage[s].is_source and s not in focal:
            if not (case is Case.PESSIMISTIC_B and stage[s] is Stage.UNCERTAIN_SOURCE):
                continue
        g.add_edge(s, t, capacity=float(v))
    if clean:
        seeds = {n: flow.outflow[n] for n in net.nodes.index
                 if stage[n].is_source and n not in focal}
    else:
        seeds = {n: flow.outflow[n] for n in focal}
        if case is Case.PESSIMISTIC_B:
            cap = release_cap(net, focal, product)
            for u in net.nodes.index[net.nodes["stage"] == Stage.UNCERTAIN_SOURCE]:
                seeds[u] = min(flow.outflow[u], cap)
    for n, cap in seeds.items():
        if n in g:
            g.add_edge(_SOURCE, n, capacity=float(cap))
    value = nx.maximum_flow_value(g, _SOURCE, _SINK) if _SOURCE in g else 0.0
    supply = _supply(net, product)
    return (supply - value if clean else value) / supply


def proportional_vi(net: Network, focal: frozenset[str], product: str) -> float:
    """The proportional index by solving the share equations directly."""
    stage = net.nodes["stage"]
    interior = [n for n in net.nodes.index if stage[n].is_interior and n not in focal]
    pos = {n: i for i, n in enumerate(interior)}
    k = len(interior)
    w, b, observed = np.zeros((k, k)), np.zeros(k), np.zeros(k)
    for s, t, v in zip(net.arcs["source"], net.arcs["target"], net.arcs["tonnes"]):
        if t not in pos or stage[s] is Stage.UNCERTAIN_SOURCE:
            continue
        i = pos[t]
        observed[i] += v
        if s in focal:
            b[i] += v
        elif s in pos:
            w[i, pos[s]] += v
    rows = observed > 0  # a node with no observed inflow keeps share 0 (w and b rows zero)
    w[rows] /= observed[rows, None]
    b[rows] /= observed[rows]
    shares = np.linalg.solve(np.eye(k) - w, b) if k else b

    def touched_share(n):
        return 1.0 if n in focal else (shares[pos[n]] if n in pos else 0.0)

    into = net.arcs[net.arcs["target"] == product]
    touched = sum(v * touched_share(s) for s, v in zip(into["source"], into["tonnes"]))
    return touched / _supply(net, product)


def baseline_vi(net: Network, focal: frozenset[str], product: str, case: Case) -> float:
    if case is Case.PROPORTIONAL:
        return proportional_vi(net, focal, product)
    return maxflow_vi(net, focal, product, case)

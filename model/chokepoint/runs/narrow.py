"""What narrows the band: which data gaps drive the distance between the bounds.

The optimistic-to-pessimistic-A band exists because trade statistics do not say how a country
splits what it received over what it sends on. For each interior node whose split matters, the
LP is re-solved with that node's split pinned pro rata (the ``pinned_split`` family): the band's
shrinkage is what knowing that one split would gain. The pessimistic-B excess over pessimistic A
comes from uncertain sources; each is re-solved as clean. Results are ranked by the gain.
"""

from __future__ import annotations

import pandas as pd

from ..cases import Case
from ..lp import DEFAULT_SOLVER, VulnerabilityLP
from ..network import Network, Stage


def band_drivers(network: Network, focal_nodes: frozenset[str], product: str,
                 solver: str = DEFAULT_SOLVER) -> pd.DataFrame:
    """One row per candidate: kind (split | uncertain_source), node, owner, stage, the bounds
    with it pinned, and ``narrows_by`` (fraction of the product's supply)."""
    lp = VulnerabilityLP(network, solver, pinning=True)
    supply = network.product_supply(product)
    stage = network.nodes["stage"]
    out_arcs = network.arcs.groupby("source").size()
    interior = [n for n in network.nodes.index if stage[n].is_interior]
    uncertain = [n for n in network.nodes.index if stage[n] is Stage.UNCERTAIN_SOURCE]
    splits = [n for n in interior if out_arcs.get(n, 0) >= 2 and n not in focal_nodes]

    def vi(case, **kw):
        return lp.solve(focal_nodes, product, case, **kw) / supply

    rows = []
    base = {}
    for case in (Case.OPTIMISTIC, Case.PESSIMISTIC_A):  # case-major: one switch per case
        lp.pin(())
        base[case] = vi(case)
        for n in splits:
            lp.pin([n])
            rows.append((n, case, vi(case)))
    lp.pin(())
    split = pd.DataFrame(rows, columns=["node", "case", "vi"]).pivot(
        index="node", columns="case", values="vi")
    o, a = Case.OPTIMISTIC, Case.PESSIMISTIC_A
    band = base[a] - base[o]
    table = pd.DataFrame({
        "kind": "split", "node": split.index,
        "optimistic": split[o].values, "pessimistic_a": split[a].values,
        "narrows_by": band - (split[a] - split[o]).values})
    b = Case.PESSIMISTIC_B
    base[b] = vi(b)
    unc = [(u, vi(b, clean={u})) for u in uncertain]
    table = pd.concat([table, pd.DataFrame({
        "kind": "uncertain_source", "node": [u for u, _ in unc],
        "pessimistic_b": [v for _, v in unc],
        "narrows_by": [base[b] - v for _, v in unc]})], ignore_index=True)
    table.insert(2, "owner", table["node"].map(network.nodes["owner"]))
    table.insert(3, "stage", table["node"].map(lambda n: stage[n].value))
    table = table[table["narrows_by"] > 1e-9].sort_values("narrows_by", ascending=False,
                                                           ignore_index=True)
    table.attrs.update({f"base_{c.value}": base[c] for c in base})
    return table


def render(table: pd.DataFrame, label: str, pair: str, top: int = 15) -> str:
    a = table.attrs
    lines = [f"{label}, {pair}: optimistic {a['base_optimistic'] * 100:.1f}%, pessimistic A "
             f"{a['base_pessimistic_a'] * 100:.1f}%, pessimistic B "
             f"{a['base_pessimistic_b'] * 100:.1f}%",
             "what would narrow the band most, if known (percentage points; a split narrows "
             "optimistic..pessimistic A, an origin narrows pessimistic B):",
             f"  {'data gap':<28} {'node':<40} {'narrows by':>10}"]
    for r in table.head(top).itertuples():
        what = "split of" if r.kind == "split" else "origin of"
        lines.append(f"  {what + ' ' + r.stage:<28} {r.node[:40]:<40} "
                     f"{r.narrows_by * 100:>10.2f}")
    if table.empty:
        lines.append("  nothing: the bounds meet")
    return "\n".join(lines) + "\n"

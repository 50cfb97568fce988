"""Every set, parameter and variable of the LP, declared once: symbol, title, description, unit.

The Pyomo models are built with these names and titles, the README's mathematics is generated
from them, and a test checks that no model component is left undeclared.
"""

from __future__ import annotations

from dataclasses import dataclass


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
               "Refining pools, refiners, cathode pools and the further processing stages: "
               "nodes that pass material on."),
        Symbol("ownable_arcs", "set", r"A^{\mathrm{own}}", "Arcs out of country nodes",
               "Arcs leaving a primary source or an interior node, which a focal country can "
               "own."),
        Symbol("mine_arcs", "set", r"A^{\mathrm{mine}}", "Mine arcs",
               "Arcs leaving a mine or a recycler (a country's primary sources)."),
        Symbol("uncertain_sources", "set", r"U", "Uncertain sources",
               "MRMT, URMS, UARP, TFCR, TFCM: material of unknown origin."),
        Symbol("uncertain_arcs", "set", r"A^{U}", "Uncertain arcs",
               "Arcs leaving an uncertain source."),
        Symbol("product_arcs", "set", r"A^{P}", "Product arcs", "Arcs into a product sink."),
        Symbol("observed_interior", "set", r"N^{\mathrm{obs}}", "Observed interior nodes",
               "Interior nodes with observed inflow (inflow not from uncertain sources)."),
        Symbol("unobserved_interior", "set", r"N^{\varnothing}", "Unobserved interior nodes",
               "Interior nodes fed only by uncertain sources."),
        Symbol("pin_pairs", "set", r"Q", "Pinned-split pairs",
               "Consecutive pairs (a, b) of arcs out of one interior node n (band narrowing)."),
        Symbol("tonnes", "param", r"v_a", "Observed flow",
               "Tonnage of contained element on each arc.", "t"),
        Symbol("outflow", "param", r"\bar{v}_n", "Node outflow",
               "Observed outflow of a node.", "t"),
        Symbol("inflow", "param", r"\hat{v}_n", "Node inflow",
               "Observed inflow of a node.", "t"),
        Symbol("observed_inflow", "param", r"\underline{v}_n", "Observed inflow",
               "Inflow of an interior node from arcs that do not leave an uncertain source.",
               "t"),
        Symbol("imbalance", "param", r"\delta_n", "Node imbalance",
               "Outflow minus inflow of an interior node in the data (rounding only).", "t"),
        Symbol("owner", "param", r"o_n", "Node owner",
               "The country (or region) that owns the node, as the network names it; what "
               "users' rules and YAML selectors read (`m.owner[n]`).", "-"),
        Symbol("stage", "param", r"g_n", "Node stage",
               "The node's supply-chain stage name (mine, refining_pool, refining, "
               "cathode_pool, ...): `m.stage[n]`.", "-"),
        Symbol("focal", "param", r"f_n", "Focal membership",
               "1 if the node's owner is in the focal set at the node's stage, else 0 "
               "(mutable; set for each focal set).", "-"),
        Symbol("weight", "param", r"w_a", "Product weight",
               "1 on the arcs into the product being measured, else 0 (mutable).", "-"),
        Symbol("release_cap", "param", r"c_u", "Uncertain-source cap",
               "Pessimistic B: min(outflow of u, P_F), with P_F the focal set's mine and "
               "refining output plus its cathode output into the product (mutable).", "t"),
        Symbol("pinned", "param", r"p_n", "Pinned split",
               "1 to split interior node n's touched outflow pro rata over its arcs (band "
               "narrowing pins one node at a time), else 0 (mutable).", "-"),
        Symbol("touched", "var", r"x_a", "Touched flow",
               "Part of an arc's flow that a focal country mined, refined, made into cathode "
               "or traded at some earlier step. In the proportional case an expression of the "
               "shares (proportional_mixing, uncertain_mixing).", "t"),
        Symbol("share", "var", r"s_n", "Touched share",
               "Proportional case: touched fraction of an interior node's throughput.", "-"),
    ]
}

"""``chokepoint data check``: what the statistics cover and how the built networks balance."""

from __future__ import annotations

from ..chemistry import MATERIALS
from .inputs import Inputs
from .mfa import build_network
from ..errors import NetworkError
from ..network import BALANCE_RTOL, UNCERTAIN_SOURCES


def data_check(year: int, profile: str = "paper", materials=tuple(MATERIALS)) -> tuple[str, bool]:
    """The report's text, and whether every node of every network balances."""
    inputs = Inputs.load(year)
    out, ok = [f"data check: {inputs.folder}, year {year}, profile {profile}", ""], True
    for material in materials:
        try:
            net = build_network(material, inputs, profile)
        except NetworkError as e:  # the network failed its own balance check
            out += [f"{material}: FAILED: {e}", ""]
            ok = False
            continue
        stage, flow = net.nodes["stage"], net.node_flow()
        mine = inputs.mine(material)
        named = sum(v for k, v in mine.items() if k != "Other")
        out.append(f"{material} (tonnes contained element)")
        out.append(f"  production: mine {sum(mine.values()):,.0f} t ({len(mine)} entries, "
                   f"{named / sum(mine.values()):.1%} by named countries); refining "
                   f"{sum(inputs.refining(material).values()):,.0f} t; cathode "
                   f"{sum(v for v in inputs.cathode(material, profile).values()):,.0f} t")
        missing = net._cache.get("missing_mine_output", {})
        if missing:
            out.append("  exports beyond mine output (set to 0): " + ", ".join(
                f"{k} {v:,.0f} t" for k, v in sorted(missing.items())))
        for stage_name in ("raw", "refined"):
            codes = inputs.codes(material, stage_name, profile)
            by_code = inputs.trade_rows(material, stage_name, profile).groupby("hs_code")[
                "tonnes"].sum()
            listed = ", ".join(f"{c} {by_code.get(c, 0.0):,.0f} t" for c in codes) or "none read"
            out.append(f"  {stage_name} trade by HS code (contained): {listed}")
        demand = sum(net.product_supply(p) for p in net.products)
        sizes = []
        for name, abbr in UNCERTAIN_SOURCES.items():
            size = flow.outflow.get(name, 0.0)
            sizes.append(f"{abbr} {size:,.0f} t ({size / demand:.1%})")
        out.append(f"  uncertain sources vs product demand {demand:,.0f} t: " + ", ".join(sizes))
        interior = flow[stage.map(lambda s: s.is_interior)]
        residual = (interior["inflow"] - interior["outflow"])
        scale = interior[["inflow", "outflow"]].max(axis=1).clip(lower=1.0)
        bad = residual.abs() > BALANCE_RTOL * scale
        worst = residual.abs().max() if len(residual) else 0.0
        out.append(f"  balance: {len(interior)} interior nodes, largest residual {worst:.3g} t"
                   + ("" if not bad.any() else f", {int(bad.sum())} UNBALANCED"))
        for node in residual[bad].index:
            ok = False
            out.append(f"    UNBALANCED {node}: inflow {flow.inflow[node]:,.3f} t, outflow "
                       f"{flow.outflow[node]:,.3f} t")
        out.append("")
    out.append("all nodes balance" if ok else "FAILED: some nodes do not balance")
    return "\n".join(out) + "\n", ok


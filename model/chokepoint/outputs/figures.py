"""Figures: Sankey diagrams of the networks (plotly), vulnerability bars, stage contributions,
sensitivity and ranking plots (matplotlib).

Colours are fixed per country (a named colour for the large producers, a stable hash of the
ISO3 code into a palette for the rest), and node positions are fixed per stage, so the same
country looks the same in every figure, material and run.
"""

from __future__ import annotations

import colorsys
import hashlib
from collections.abc import Iterable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
matplotlib.rcParams["svg.hashsalt"] = "chokepoint"  # stable SVG ids: same figure, same bytes
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from .. import countries  # noqa: E402
from ..cases import CASES, Case  # noqa: E402
from ..chemistry import MATERIALS  # noqa: E402
from ..network import Network, Stage  # noqa: E402

#: Colours of the countries that dominate the figures, as the paper's readers know them (no
#: grey: grey is uncertain sources and sinks in the Sankeys and the B bound in Fig. 5).
NAMED = {"CHN": "#d62728", "AUS": "#e6a817", "CHL": "#1f77b4", "ARG": "#17becf",
         "COD": "#8c564b", "RUS": "#9467bd", "ZAF": "#2ca02c", "IDN": "#ff7f0e",
         "JPN": "#e377c2", "KOR": "#00798c", "USA": "#393b79", "FIN": "#637939",
         "PHL": "#8c6d31", "CAN": "#843c39", "BRA": "#7b4173", "GAB": "#5254a3",
         "NCL": "#bd9e39", "BEL": "#ad494a", "NOR": "#3182bd", "MAR": "#31a354"}
PALETTE = [matplotlib.colors.to_hex(c) for c in plt.get_cmap("tab20b").colors] + \
    [matplotlib.colors.to_hex(c) for c in plt.get_cmap("tab20c").colors[:12]]
UNCERTAIN_COLOUR = "#b0b0b0"
SINK_COLOUR = "#d9d9d9"
PRODUCT_COLOUR = "#222222"
#: Sankey column of each stage (0 = left).
COLUMN = {Stage.MINE: 0.0, Stage.RECYCLING: 0.0, Stage.UNCERTAIN_SOURCE: None,
          Stage.REFINING_POOL: 0.25, Stage.REFINING: 0.45, Stage.PRECURSOR: 0.55,
          Stage.CATHODE_POOL: 0.7, Stage.CELL: 0.78, Stage.PACK: 0.86, Stage.VEHICLE: 0.93,
          Stage.PRODUCT: 1.0, Stage.OTHER_SINK: None}


def colour(owner: str) -> str:
    """The colour of a country (or other owner), the same in every figure."""
    key = countries.key(owner)
    if key in NAMED:
        return NAMED[key]
    digest = int(hashlib.sha1(key.encode()).hexdigest(), 16)
    return PALETTE[digest % len(PALETTE)]


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


# -- Sankey ---------------------------------------------------------------------------------


def sankey(network: Network, focal_nodes: Iterable[str] = (), title: str | None = None,
           min_label_share: float = 0.01):
    """Plotly Sankey of a network: stages left to right, nodes coloured by owner, uncertain
    sources and non-battery sinks grey; arcs out of focal nodes highlighted."""
    import plotly.graph_objects as go

    focal = set(focal_nodes)
    nodes = list(network.nodes.index)
    idx = {n: i for i, n in enumerate(nodes)}
    stage = network.nodes["stage"]
    owner = network.nodes["owner"]
    flow = network.node_flow()
    total = float(network.arcs["tonnes"].sum()) or 1.0
    xs, labels, node_colours = [], [], []
    # x by stage; an uncertain source sits left of what it feeds, a sink right of its sender
    first_target = network.arcs.groupby("source")["target"].first()
    first_source = network.arcs.groupby("target")["source"].first()
    for n in nodes:
        st = stage[n]
        x = COLUMN[st]
        if st is Stage.UNCERTAIN_SOURCE:
            x = max(0.0, (COLUMN[stage[first_target[n]]] or 0.1) - 0.12)
        elif st is Stage.OTHER_SINK:
            x = min(0.97, (COLUMN[stage[first_source[n]]] or 0.9) + 0.12)
        xs.append(max(0.001, min(0.999, x)))
        size = max(flow.inflow[n], flow.outflow[n])
        show = size / total >= min_label_share or st is Stage.PRODUCT or n in focal
        name = owner[n] if st not in (Stage.PRODUCT,) else n
        labels.append(name if show else "")
        if st is Stage.UNCERTAIN_SOURCE:
            node_colours.append(UNCERTAIN_COLOUR)
        elif st is Stage.OTHER_SINK:
            node_colours.append(SINK_COLOUR)
        elif st is Stage.PRODUCT:
            node_colours.append(PRODUCT_COLOUR)
        else:
            node_colours.append(colour(owner[n]))
    link_colours = []
    for s in network.arcs["source"]:
        base = UNCERTAIN_COLOUR if stage[s] is Stage.UNCERTAIN_SOURCE else node_colours[idx[s]]
        alpha = 0.75 if s in focal else (0.15 if focal else 0.4)
        link_colours.append(_rgba(base, alpha))
    hover = [f"{n}<br>{max(flow.inflow[n], flow.outflow[n]):,.0f} t" for n in nodes]
    fig = go.Figure(go.Sankey(
        arrangement="snap",
        node=dict(label=labels, color=node_colours, x=xs, pad=6, thickness=12,
                  customdata=hover, hovertemplate="%{customdata}<extra></extra>",
                  line=dict(width=0.3, color="#555")),
        link=dict(source=[idx[s] for s in network.arcs["source"]],
                  target=[idx[t] for t in network.arcs["target"]],
                  value=network.arcs["tonnes"].astype(float).tolist(), color=link_colours,
                  hovertemplate="%{source.customdata} -> %{target.customdata}<br>"
                                "%{value:,.0f} t<extra></extra>"),
    ))
    material = network.material or ""
    head = title or (f"{material.capitalize()} {network.year or ''}: mining -> raw trade -> "
                     "refining -> refined trade -> cathode (t contained element)")
    fig.update_layout(title=dict(text=head, font=dict(size=14)), font=dict(size=10),
                      width=1100, height=700, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def write_sankey(fig, path: Path) -> Path:
    """``path``.html: the interactive Sankey. plotly.js is written once beside the figures
    (``plotly.min.js``, so they work offline) instead of 4.7 MB inside every one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    out = path.with_suffix(".html")
    fig.write_html(out, include_plotlyjs="directory", full_html=True, div_id=path.stem,
                   config={"displaylogo": False})
    return out


def write_static(figs: list, paths: list[Path]) -> str | None:
    """PNG and SVG of plotly figures, all in one browser session (kaleido drives the installed
    Chrome or Chromium); returns why not, when no browser is there."""
    import plotly.io as pio

    targets = [p.with_suffix(s) for p in paths for s in (".png", ".svg")]
    if not targets:
        return None
    try:
        pio.write_images([f for f in figs for _ in (0, 1)], targets,
                         scale=[1.5, 1] * len(figs))
    except (RuntimeError, OSError) as e:  # kaleido finds no browser: the HTML figures stay
        for t in targets:
            t.unlink(missing_ok=True)
        return (f"static Sankey images need Chrome or Chromium for kaleido ({type(e).__name__});"
                " the interactive ones are in figures/*.html")
    return None


# -- indices ----------------------------------------------------------------------------------


def _pair_labels(ds: xr.Dataset) -> list[tuple[str, str]]:
    return [(c, m) for c in ds.chemistry.values for m in ds.material.values
            if m != "all" and bool(ds.vi.sel(chemistry=c, material=m).notnull().any())]


def _vi_colour(share: float) -> tuple[float, float, float]:
    """White at 0%, deep red at 100%: the one colour scale of an index value, in the report's
    grid and in the stage heat map alike."""
    light = 0.97 - 0.52 * max(0.0, min(1.0, share))
    return colorsys.hls_to_rgb(4 / 360, light, 0.75)


def vi_colour(share: float) -> str:
    """The colour of an index value (a fraction, 0..1) as ``#rrggbb``."""
    return matplotlib.colors.to_hex(_vi_colour(share))


#: The index value scale as a colormap (0..100 %).
VI_CMAP = matplotlib.colors.LinearSegmentedColormap.from_list(
    "chokepoint_vi", [_vi_colour(x / 20) for x in range(21)])
#: Cells that are 0 by construction (the focal set owns no node of the network).
CONSTRUCTION_COLOUR = "#e4e4e4"
#: The pessimistic-B bound: a neutral grey, so that a data-gap bound never reads as a country.
BOUND_COLOUR = "#555555"


def vulnerability_bars(ds: xr.Dataset, focal: list[str] | None = None):
    """The paper's Fig. 5: proportional bars, optimistic..pessimistic A whiskers, a grey dash
    at pessimistic B where it is above A; grouped by pair, one bar per focal set in its
    country's colour (colour means country here, as in the Sankeys)."""
    from matplotlib.lines import Line2D

    focal = focal or list(ds.focal.values)
    pairs = _pair_labels(ds)
    fig, ax = plt.subplots(figsize=(max(7, 1.6 * len(pairs) + 2), 4.2), layout="constrained")
    width = 0.8 / len(focal)
    handles = []
    for j, f in enumerate(focal):
        x = np.arange(len(pairs)) + (j - (len(focal) - 1) / 2) * width
        sel = [ds.vi.sel(focal=f, chemistry=c, material=m) * 100 for c, m in pairs]
        p = np.array([float(s.sel(case="proportional")) for s in sel])
        lo = np.array([float(s.sel(case="optimistic")) for s in sel])
        hi = np.array([float(s.sel(case="pessimistic_a")) for s in sel])
        b = np.array([float(s.sel(case="pessimistic_b")) for s in sel])
        c = colour(f)
        handles.append(ax.bar(x, p, width * 0.9, color=c, label=f, edgecolor="white",
                              linewidth=0.4))
        # whiskers drawn as lines with caps only at ends off the baseline: a band of no
        # width, or a cap at 0 under a zero bar, would draw dashes along the baseline
        band = (hi - lo) > 0.2
        cap = min(0.3 * width, 0.08)
        ax.vlines(x[band], lo[band], hi[band], colors="black", linewidth=0.8)
        ax.hlines(hi[band], x[band] - cap, x[band] + cap, colors="black", linewidth=0.8)
        low = band & (lo > 0.2)
        ax.hlines(lo[low], x[low] - cap, x[low] + cap, colors="black", linewidth=0.8)
        # B as a dash as wide as the bar (triangles of a fixed size crowd along 100% when
        # bars are thin); where B equals A the whisker's top already shows it
        above = b > hi + 0.2
        ax.hlines(b[above], x[above] - width * 0.42, x[above] + width * 0.42,
                  colors=BOUND_COLOUR, linewidth=1.6, clip_on=False)
    ax.set_xticks(np.arange(len(pairs)), [f"{c}-{MATERIALS[m]}" for c, m in pairs])
    ax.set_ylabel("vulnerability index (% of cathode output)")
    ax.set_ylim(0, 100)
    ax.set_xlim(-0.5, len(pairs) - 0.5)
    ax.spines[["top", "right"]].set_visible(False)
    key = [Line2D([], [], color="black", linewidth=0.8, marker="_", markersize=6,
                  label="whisker: optimistic to pessimistic A"),
           Line2D([], [], color=BOUND_COLOUR, linewidth=1.6,
                  label="dash: pessimistic B, where above A (data-gap bound)")]
    ax.legend(handles=handles + key, fontsize=7, ncols=min(5, len(focal) + 2),
              loc="upper center", bbox_to_anchor=(0.5, -0.08), frameon=False,
              title="bar: proportional, coloured by focal set", title_fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    return fig


STEP_NAMES = {"cathode": "cathode", "refining": "+ refining", "mining": "+ mining"}


def stage_contributions(ds: xr.Dataset, case: str = "proportional",
                        owns: dict[str, set[str]] | None = None):
    """The paper's Fig. 4 as one heat map: a row per focal set, a column group per pair, in
    each group the index with the focal set counted at the cathode stage, then also at
    refining, then also at mining (the index itself); colour is the index value on the grid's
    scale. ``owns`` maps a focal set to the materials of which it owns a node; a pair of
    another material is hatched grey (0 by construction)."""
    from matplotlib.patches import Rectangle

    pairs = _pair_labels(ds)
    focal = [str(f) for f in ds.focal.values]
    stages = [str(s) for s in ds.stage.values]
    k = len(stages)
    data = np.array([[float(ds.vi_cumulative.sel(focal=f, chemistry=c, material=m, case=case,
                                                 stage=s)) * 100
                      for c, m in pairs for s in stages] for f in focal])
    cols = len(pairs) * k
    fig, ax = plt.subplots(figsize=(0.42 * cols + 2.6, 0.3 * len(focal) + 1.5),
                           layout="constrained")
    im = ax.imshow(np.nan_to_num(data), cmap=VI_CMAP, vmin=0, vmax=100, aspect="auto",
                   interpolation="nearest")
    for i, f in enumerate(focal):
        for j in range(cols):
            c, m = pairs[j // k]
            if owns is not None and m not in owns.get(f, {m}):
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor=CONSTRUCTION_COLOUR,
                                       hatch="////", edgecolor="#b5b5b5", linewidth=0))
                continue
            v = data[i, j]
            if np.isfinite(v):
                ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=6.5,
                        color="white" if v > 60 else "#222")
    for g in range(1, len(pairs)):  # white rules between pairs
        ax.axvline(g * k - 0.5, color="white", linewidth=3)
    ax.set_yticks(range(len(focal)), focal, fontsize=8)
    ax.set_xticks(range(cols), [STEP_NAMES.get(s, s) for _ in pairs for s in stages],
                  rotation=90, fontsize=6.5)
    top = ax.secondary_xaxis("top")
    top.set_xticks([g * k + (k - 1) / 2 for g in range(len(pairs))],
                   [f"{c}-{MATERIALS[m]}" for c, m in pairs], fontsize=8)
    top.tick_params(length=0)
    ax.tick_params(length=0)
    for spine in [*ax.spines.values(), *top.spines.values()]:
        spine.set_visible(False)
    bar = fig.colorbar(im, ax=ax, fraction=0.04, pad=0.01)
    bar.set_label(f"{CASES[Case(case)].title.split(' (')[0]} index (%), "
                  "focal set counted from the cathode stage upstream", fontsize=7)
    bar.ax.tick_params(labelsize=7)
    return fig


def sensitivity(ds: xr.Dataset):
    """Distribution of each index over the drawn samples (box per case), central value ●."""
    focal = list(ds.focal.values)
    pairs = _pair_labels(ds)
    panels = [(f, c, m) for f in focal for c, m in pairs]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels) + 0.5, 3),
                             layout="constrained", squeeze=False)
    drawn = ds.vi.sel(sample=ds["sample"] > 0)
    for ax, (f, c, m) in zip(axes[0], panels):
        cases = [c_ for c_ in ds.case.values]
        data = [drawn.sel(focal=f, chemistry=c, material=m, case=k).values * 100 for k in cases]
        ax.boxplot(data, whis=(5, 95), showfliers=False)
        ax.plot(range(1, len(cases) + 1),
                [float(ds.vi.sel(sample=0, focal=f, chemistry=c, material=m, case=k)) * 100
                 for k in cases], "o", color="black", markersize=4)
        ax.set_xticks(range(1, len(cases) + 1), [k.replace("_", " ") for k in cases],
                      fontsize=7, rotation=20)
        ax.set_title(f"{f}, {c}-{MATERIALS[m]} ({drawn.sizes['sample']} samples)", fontsize=9)
        ax.set_ylabel("VI (%), box 25-75, whiskers 5-95")
        ax.grid(axis="y", alpha=0.3)
    return fig


def ranking(df, chemistry: str, material: str, top: int = 15):
    """Top focal sets by the proportional index for one pair, bounds as whiskers."""
    block = df[(df["chemistry"] == chemistry) & (df["material"] == material)]
    wide = block.pivot_table(index="focal", columns="case", values="vi") * 100
    wide = wide.sort_values("proportional", ascending=False).head(top)[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(wide) + 1.2), layout="constrained")
    y = np.arange(len(wide))
    ax.barh(y, wide["proportional"], color=[colour(f) for f in wide.index])
    lo, hi = wide["optimistic"].to_numpy(), wide["pessimistic_a"].to_numpy()
    band = (hi - lo) > 0.2  # as in Fig. 5: no whisker of no width, no cap on the axis
    ax.hlines(y[band], lo[band], hi[band], colors="black", linewidth=0.8)
    ax.vlines(hi[band], y[band] - 0.2, y[band] + 0.2, colors="black", linewidth=0.8)
    low = band & (lo > 0.2)
    ax.vlines(lo[low], y[low] - 0.2, y[low] + 0.2, colors="black", linewidth=0.8)
    ax.set_yticks(y, wide.index, fontsize=8)
    ax.set_xlabel(f"{chemistry}-{MATERIALS[material]} vulnerability index (%)")
    ax.set_xlim(0, 105)
    ax.grid(axis="x", alpha=0.3)
    return fig


def save(fig, path: Path) -> list[Path]:
    """A matplotlib figure as PNG and SVG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for suffix in (".png", ".svg"):
        fig.savefig(path.with_suffix(suffix), dpi=130, metadata={"Date": None}
                    if suffix == ".svg" else None)
        out.append(path.with_suffix(suffix))
    plt.close(fig)
    return out

"""The HTML report: one self-contained file that reads at a glance.

At the top, one grid in the shape of the paper's Table 2: focal sets as rows, the pairs in the
paper's order, the four cases under each, every cell coloured by its value. A sweep shows one
grid per variant, headed by its label and swept values; a sensitivity run the central sample and
the drawn samples' quantiles. Then the warnings a domain expert needs, the figures (the paper's
Figs. 2-5), the scenario, and the provenance as a table. plotly.js is inlined once, images are
inlined, nothing is fetched. Figures are also written beside it under ``figures/``.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import jinja2
import markdown
import xarray as xr
from tqdm.auto import tqdm

from . import figures
from ..cases import CASES, Case
from ..chemistry import AGGREGATE, pair_key, pair_label
from ..network import Network
from ..publish import write_file
from ..statistics.inputs import data_dir
from .results import warnings_for

REPORT_HTML = "report.html"

TEMPLATE = jinja2.Template("""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Chokepoint report: {{ name }}</title>
<style>
 body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1250px; color: #222; }
 h1 { font-size: 1.6em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ccc; }
 table.grid { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.92em; }
 table.grid th, table.grid td { border: 1px solid #ddd; padding: 2px 4px; text-align: right; }
 .grids { overflow-x: auto; }
 table.grid th.focal, table.grid td.focal { text-align: left; white-space: nowrap; }
 table.grid th.pair { text-align: center; border-bottom: 2px solid #999; }
 table.grid caption { text-align: left; font-weight: bold; padding: 4px 0;
   width: max-content; max-width: 1200px; }
 .legend span { display: inline-block; padding: 1px 8px; margin-right: 2px; }
 table.grid td.bound { font-style: italic; color: #333; }
 table.grid td.gap::after { content: "†"; color: #8a1c12; font-style: normal; }
 table.grid td.construction, .legend span.construction { color: #8a8a8a;
   background: repeating-linear-gradient(45deg, #f1f1f1 0 4px, #d9d9d9 4px 6px); }
 table.grid caption .families { font-weight: normal; color: #444; }
 #active-families { background: #eef4fb; border-left: 4px solid #3b6fb6; padding: 0.3em 0.8em; }
 #active-families ul { margin: 0.2em 0; }
 .warn { background: #fff6e0; border-left: 4px solid #e6a817; padding: 0.4em 0.8em; }
 img { max-width: 100%; } pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
 .meta td, .meta th { padding: 2px 12px 2px 0; vertical-align: top; text-align: left; }
</style></head><body>
<h1>Chokepoint: {{ name }}</h1>
<p>{{ description }}</p>
<p>Vulnerability index: the share (%) of a chemistry's cathode output made with material that
the focal set mined, refined, made into cathode or traded. Solver: <span id="solver">{{ solver
}}</span>.{% if note %} {{ note }}{% endif %}</p>
<div id="active-families">{% if active.common is none %}
<p>User constraint families differ by variant: each grid's caption names those active in it.</p>
{% elif active.common %}<p><b>User constraint families active</b> (added to the core method):</p>
<ul>{% for f in active.common %}<li class="family" data-family="{{ f.name }}"><b>{{ f.title }}</b>:
<code>{{ f.call }}</code>{% if f.case_titles %}, in {{ f.case_titles }}{% endif %}{% if f.rows %}; rows: {{ f.rows }}{% endif %}</li>
{% endfor %}</ul>{% else %}<p>The core method only: no user constraint families.</p>{% endif %}</div>

<div class="grids">
{% for grid in grids %}
<table class="grid" id="grid-{{ loop.index }}">
 <caption>{{ grid.caption }}{% if grid.families is not none %}<br><span class="families">user
 families: {% for f in grid.families %}<span class="family" data-family="{{ f.name }}">{{ f.title }}
 <code>{{ f.call }}</code></span>{% if not loop.last %}; {% endif %}{% else %}none (core method
 only){% endfor %}</span>{% endif %}</caption>
 <tr><th class="focal" rowspan="2">focal set</th>
 {% for p in pairs %}<th class="pair" colspan="{{ cases|length }}">{{ p.label }}</th>{% endfor %}</tr>
 <tr>{% for p in pairs %}{% for c in cases %}<th title="{{ c.title }}">{{ c.short }}</th>{% endfor %}{% endfor %}</tr>
 {% for row in grid.rows %}<tr><td class="focal">{{ row.focal }}</td>
 {% for cell in row.cells %}<td{% if cell.cls %} class="{{ cell.cls }}"{% endif %}{% if cell.why %} title="{{ cell.why }}"{% endif %}{% if cell.colour %} style="background:{{ cell.colour }}"{% endif %} data-focal="{{ row.focal }}" data-pair="{{ cell.pair }}" data-case="{{ cell.case }}"{% if grid.variant is not none %} data-variant="{{ grid.variant }}"{% endif %}>{{ cell.text }}</td>{% endfor %}</tr>
 {% endfor %}
</table>
{% endfor %}
</div>
<p class="legend">{% for c in cases %}<b>{{ c.short }}</b> {{ c.title }}: {{ c.description }}<br>{% endfor %}
Index: {% for v, col in legend %}<span style="background:{{ col }}">{{ v }}%</span>{% endfor %}
{% if bound_legend %}&nbsp; <i>B</i>, a bound on data gaps, on its own grey scale: {% for v, col in bound_legend
%}<span style="background:{{ col }}"><i>{{ v }}%</i></span>{% endfor %}; &dagger; B is {{ gap }} points
or more above A (only the uncertain sources take it there: the data cannot rule it out){% endif %}
&nbsp; <span class="construction">0.0</span> 0 by construction: the focal set owns no node of
that network (hover a cell for the reason).</p>
<p class="legend" id="colours">Colour means one thing per kind of figure: in the grid and the stage
heat map it is the index value (white 0% to deep red 100%; grey for the B bound, hatched grey for 0
by construction); in Fig. 5 and the material flows it is the country (or focal set), the same in
every figure and run.</p>

{% if warnings %}<h2>Warnings</h2>
{% for w in warnings %}<p class="warn">{{ w }}</p>{% endfor %}{% endif %}

<h2>Vulnerability by focal set (Fig. 5 of the paper)</h2>
<img alt="vulnerability bars" src="data:image/png;base64,{{ bars }}">

{% if stages %}<h2>Stage contributions (Fig. 4 of the paper)</h2>
<p>The proportional index{{ stages_of }} with the focal set counted at the cathode stage only, then
also at refining, then also at mining (the index itself): where the colour deepens is the stage
the exposure comes from. Hatched grey: 0 by construction. Every case is in
<code>stage_contributions.csv</code>.</p>
<img alt="stage contributions" id="stages" src="data:image/png;base64,{{ stages }}">
{% endif %}

{% if sensitivity %}<h2>Sensitivity</h2>
<img alt="sensitivity" src="data:image/png;base64,{{ sensitivity }}">{% endif %}

{% if sankeys %}<h2>Material flows (Figs. 2 and 3 of the paper)</h2>
<p>Nodes coloured by country; grey: uncertain sources and non-battery sinks;
{{ highlight }}. Hover for tonnes; drag nodes to untangle.</p>
{% for s in sankeys %}{{ s }}{% endfor %}{% endif %}

<h2>Scenario</h2>
<pre>{{ scenario_text }}</pre>

<h2>Provenance</h2>
<table class="meta" id="provenance">
{% for key, value in provenance %}<tr><td>{{ key }}</td><td><code>{{ value }}</code></td></tr>
{% endfor %}</table>
{% if families %}<h3>Constraint families of the scenario</h3>
<table class="meta" id="families">
 <tr><th>family</th><th>title</th><th>cases</th><th>parameters</th><th>source</th></tr>
{% for f in families %}<tr><td><code>{{ f.name }}</code></td><td>{{ f.title }}</td>
<td>{{ f.case_titles }}</td><td><code>{{ f.call }}</code></td><td>{{ f.source }}</td></tr>
{% endfor %}</table>{% endif %}
<h3>The data</h3>
<div id="data-readme">{{ data_readme }}</div>
</body></html>
""", autoescape=jinja2.select_autoescape(default=True))

SHORT = {Case.PROPORTIONAL: "P", Case.OPTIMISTIC: "O", Case.PESSIMISTIC_A: "A",
         Case.PESSIMISTIC_B: "B"}


#: Points by which pessimistic B must exceed A for its cell to be marked a data-gap bound.
GAP_POINTS = 10


def _colour(vi: float) -> str:
    """White at 0%, deep red at 100% (the grid reads at a glance); the stage heat map's scale."""
    return figures.vi_colour(vi)


def _bound_colour(vi: float) -> str:
    """Pessimistic B on a grey scale of its own: a bound on data gaps, which is 100% for most
    focal sets, must not dominate the grid's colour."""
    light = 97 - 35 * max(0.0, min(1.0, vi))
    return f"hsl(0, 0%, {light:.0f}%)"


def owned_materials(focal_nodes: dict | None) -> dict[str, set[str]] | None:
    """{focal set: materials of whose network it owns a node}, from {focal: {material: nodes}}."""
    if focal_nodes is None:
        return None
    return {f: {m for m, nodes in per.items() if nodes} for f, per in focal_nodes.items()}


def _construction(focal: str, chemistry: str, material: str, owns, pairs) -> str | None:
    """Why a cell is 0 by construction (the focal set owns no node of the networks its value
    reads), or None."""
    if owns is None or focal not in owns:
        return None
    if material == AGGREGATE:
        read = sorted({p["material"] for p in pairs if p["chemistry"] == chemistry
                       and p["material"] != AGGREGATE})
    else:
        read = [material]
    if not read or set(read) & owns[focal]:
        return None
    return (f"0 by construction: {focal} owns no node of the {', '.join(read)} network"
            f"{'s' if len(read) > 1 else ''}, not a finding")


def _pairs(ds: xr.Dataset) -> list[dict]:
    found = [(str(c), str(m)) for c in ds.chemistry.values for m in ds.material.values
             if bool(ds["vi"].sel(chemistry=c, material=m).notnull().any())]
    return [{"chemistry": c, "material": m, "label": pair_label(c, m)}
            for c, m in sorted(found, key=lambda p: pair_key(*p))]


def _grid(ds: xr.Dataset, pairs: list[dict], caption: str, variant=None,
          text=None, owns=None, families=None) -> dict:
    """One Table 2-shaped grid; ``text(focal, pair, case)`` overrides a cell's text. Cells
    that are 0 by construction are hatched with the reason on hover; pessimistic B has a grey
    scale of its own and a mark where it is far above A."""
    rows = []
    for focal in map(str, ds.focal.values):
        cells = []
        for p in pairs:
            at = ds["vi"].sel(focal=focal, chemistry=p["chemistry"], material=p["material"])
            why = _construction(focal, p["chemistry"], p["material"], owns, pairs)
            for case in map(str, ds.case.values):
                vi = float(at.sel(case=case))
                cell = {"pair": p["label"], "case": case, "colour": _colour(vi), "cls": "",
                        "why": None,
                        "text": text(focal, p, case) if text else f"{100 * vi:.1f}"}
                if why and vi == 0:  # a family that forces touched flow makes it a finding
                    cell.update(cls="construction", why=why, colour=None)
                elif case == "pessimistic_b":
                    cell.update(cls="bound", colour=_bound_colour(vi),
                                why="pessimistic B: a bound on what data gaps could carry")
                    if "pessimistic_a" in ds.case.values:
                        a = float(at.sel(case="pessimistic_a"))
                        if 100 * (vi - a) >= GAP_POINTS:
                            cell.update(cls="bound gap", why=(
                                f"pessimistic B {100 * vi:.1f}% against A {100 * a:.1f}%: "
                                "only the uncertain sources (data gaps) take it there; the "
                                "data cannot rule it out"))
                cells.append(cell)
        rows.append({"focal": focal, "cells": cells})
    return {"caption": caption, "rows": rows, "variant": variant, "families": families}


def _grids(full: xr.Dataset, pairs: list[dict], owns=None) -> list[dict]:
    """The grid; one per variant of a sweep (labelled by its swept values); for a sensitivity
    run the central sample, then the drawn samples' median and 5-95% range."""
    out = []
    variants = range(full.sizes["variant"]) if "variant" in full.dims else [None]
    per_variant = json.loads(full.attrs.get("variant_families", "null"))
    for v in variants:
        ds = full if v is None else full.isel(variant=v)
        fams = (None if v is None or per_variant is None or not any(per_variant)
                else per_variant[v])
        label = ""
        if v is not None:
            swept = [k for k in full.coords if full.coords[k].dims == ("variant",)
                     and k not in ("variant", "variant_label", "active_families")]
            named = str(ds["variant_label"].item())
            # the label a sweep makes itself names the keys as the scenario spells them
            auto = ", ".join(f"{k.removeprefix('sweep.')}={_value(ds.coords[k].item())}"
                             for k in swept)
            values = ", ".join(f"{k} = {_value(ds.coords[k].item())}" for k in swept)
            # a label the user gave is shown with the values it stands for
            label = f"variant {v}: " + (values if named == auto or not named else
                                        f"{named} ({values})" if values else named)
        if "sample" in ds.dims:
            central = ds.sel(sample=0)
            out.append(_grid(central, pairs, (label + ": " if label else "") +
                             "central values (sample 0: every factor 1)", v, owns=owns,
                             families=fams))
            if "vi_quantile" in ds:
                q = ds["vi_quantile"]
                qs = [float(x) for x in q["quantile"].values]
                lo, mid, hi = min(qs), qs[len(qs) // 2], max(qs)

                def text(focal, p, case, q=q, lo=lo, mid=mid, hi=hi):
                    sel = q.sel(focal=focal, chemistry=p["chemistry"], material=p["material"],
                                case=case)
                    return (f"{100 * float(sel.sel(quantile=mid)):.1f} "
                            f"[{100 * float(sel.sel(quantile=lo)):.1f}-"
                            f"{100 * float(sel.sel(quantile=hi)):.1f}]")

                n = int((ds["sample"] > 0).sum())
                out.append(_grid(central, pairs, (label + ": " if label else "") +
                                 f"over {n} drawn samples: median [{lo:.0%}-{hi:.0%} range]",
                                 v, text, owns=owns, families=fams))
        else:
            out.append(_grid(ds, pairs, label or "vulnerability index, %", v, owns=owns,
                             families=fams))
    return out


def _value(x) -> str:
    """A swept value as the sweep's own labels write it (a switch as on/off)."""
    return ("on" if x else "off") if isinstance(x, bool) else str(x)


def _keep(fig, path: Path) -> str:
    """Save a figure under figures/ (PNG, SVG); return its PNG, base64, for inlining."""
    png = figures.save(fig, path)[0]
    return base64.b64encode(png.read_bytes()).decode()


def write_report(dataset: xr.Dataset, networks: dict[str, Network], scenario_text: str,
                 out_dir: Path, highlight: dict[str, frozenset[str]] | None = None,
                 highlight_label: str | None = None, focal_nodes: dict | None = None,
                 progress: bool | None = None) -> Path:
    """Write ``report.html`` and ``figures/`` into ``out_dir``; returns the report's path.
    ``focal_nodes`` maps each focal set to {material: its nodes} (for the warnings)."""
    out_dir = Path(out_dir)
    fig_dir = out_dir / "figures"
    full = dataset
    ds = full
    for dim in ("variant", "sample"):
        if dim in ds.dims:
            ds = ds.isel({dim: 0})
    steps = 1 + ("vi_cumulative" in ds) + ("sample" in full.dims) + 2 * len(networks) + 1
    bar = tqdm(total=steps, desc="report", unit="figure", leave=False,
               disable=None if progress is None else not progress)
    bars = _keep(figures.vulnerability_bars(ds), fig_dir / "vulnerability_bars")
    bar.update()
    owns = owned_materials(focal_nodes)
    stages = None
    if "vi_cumulative" in ds:
        stages = _keep(figures.stage_contributions(ds, owns=owns),
                       fig_dir / "stage_contributions")
        bar.update()
    sens = None
    if "sample" in full.dims:
        sfull = full.isel(variant=0) if "variant" in full.dims else full
        sens = _keep(figures.sensitivity(sfull), fig_dir / "sensitivity")
        bar.update()
    sankeys, figs, paths = [], [], []
    highlight = highlight or {}
    for i, (material, net) in enumerate(networks.items()):
        fig = figures.sankey(net, highlight.get(material, ()))
        figures.write_sankey(fig, fig_dir / f"sankey_{material}")
        figs.append(fig)
        paths.append(fig_dir / f"sankey_{material}")
        sankeys.append(fig.to_html(full_html=False, include_plotlyjs=(i == 0),
                                   div_id=f"sankey-{material}", config={"displaylogo": False}))
        bar.update()
    static_note = figures.write_static(figs, paths)
    bar.update(len(networks) + 1)
    bar.close()
    prov = json.loads(ds.attrs.get("provenance", "{}"))
    readme = data_dir() / "README.md"
    cases = [{"key": c, "short": SHORT[Case(c)], "title": CASES[Case(c)].title.split(" (")[0],
              "description": CASES[Case(c)].description} for c in map(str, ds.case.values)]
    pairs = _pairs(ds)
    warnings = warnings_for(full, networks, focal_nodes or {})
    if static_note:
        warnings.append(static_note)
    html = TEMPLATE.render(
        name=ds.attrs.get("scenario", "scenario"), description=ds.attrs.get("description", ""),
        solver=ds.attrs.get("solver", ""), grids=_grids(full, pairs, owns), pairs=pairs,
        cases=cases, legend=[(v, _colour(v / 100)) for v in (0, 25, 50, 75, 100)],
        bound_legend=[(v, _bound_colour(v / 100)) for v in (0, 50, 100)]
        if "pessimistic_b" in ds.case.values else [], gap=GAP_POINTS,
        active=_active(full),
        stages_of=(" (variant 0)" if "variant" in full.dims else "")
        + (" (central sample)" if "sample" in full.dims else ""),
        note=("; ".join(["A sweep: one grid per variant"] * ("variant" in full.dims)
                        + ["A sensitivity run"] * ("sample" in full.dims))),
        warnings=warnings, bars=bars, stages=stages, sensitivity=sens,
        sankeys=[jinja2.utils.markupsafe.Markup(s) for s in sankeys],
        highlight=(f"arcs out of {highlight_label}'s nodes highlighted" if highlight_label
                   else "no focal set highlighted"),
        scenario_text=scenario_text, provenance=_provenance_rows(prov),
        families=[_family(f) for f in json.loads(ds.attrs.get("constraint_families", "[]"))],
        data_readme=jinja2.utils.markupsafe.Markup(data_html(readme))
        if readme.is_file() else "(no data/)")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / REPORT_HTML
    write_file(path, html)
    return path


def data_html(readme: Path) -> str:
    """data/README.md as the docs site shows it: only the part between its snippet markers
    (the part docs/data.md includes), fenced blocks as code, its ``##`` headings one level
    below the report's "The data" (h3)."""
    from markdown.extensions.toc import TocExtension

    text = readme.read_text(encoding="utf-8")
    start, end = "<!-- --8<-- [start:body] -->", "<!-- --8<-- [end:body] -->"
    if start in text and end in text:
        text = text.split(start, 1)[1].split(end, 1)[0]
    return markdown.markdown(text, extensions=["tables", "fenced_code",
                                               TocExtension(baselevel=3, toc_depth=0)])


def _call(f: dict) -> str:
    """``name(p=v, ...)`` of a family's record in results.nc, as
    :func:`chokepoint.lp.families.parameter_text` writes it."""
    if f.get("call"):
        return f["call"]
    params = ", ".join(f"{p}={v:g}" for p, v in (f.get("parameters") or {}).items())
    return f"{f['name']}({params})"


def _family(f: dict) -> dict:
    """A family's record as the report shows it."""
    cases = [CASES[Case(c)].title.split(" (")[0] for c in f.get("cases", [])]
    rows = f.get("rows")
    return {**f, "call": _call(f), "case_titles": ", ".join(cases),
            "rows": ", ".join(f"{m} {n}" for m, n in rows.items())
            if isinstance(rows, dict) else rows}


def _active(full: xr.Dataset) -> dict:
    """The user families active in the run: ``common`` lists them when every variant has the
    same (or there are no variants), None when they differ (each grid's caption names them)."""
    per_variant = json.loads(full.attrs.get("variant_families", "null"))
    if per_variant is not None:  # a sweep
        if len({tuple(_call(f) for f in fams) for fams in per_variant}) > 1:
            return {"common": None}
        return {"common": [_family(f) for f in per_variant[0]]}
    return {"common": [_family(f) for f in json.loads(full.attrs.get("constraint_families",
                                                                      "[]"))]}


def _provenance_rows(prov: dict) -> list[tuple[str, str]]:
    """The provenance record as (what, value) rows: code, data by content, solvers."""
    rows = [("Chokepoint", prov.get("chokepoint", "unknown")),
            ("git commit", prov.get("git_commit") or "none (an installed package)"),
            ("Python", prov.get("python", "")),
            ("scenario", f"{prov.get('scenario_file') or '(in memory)'}"
                         + (f"  sha256:{prov['scenario_sha256']}" if prov.get("scenario_sha256")
                            else ""))]
    rows += [(f"input {name}", digest) for name, digest in prov.get("inputs", {}).items()]
    rows += [(f"solver {name}", version or "version unknown")
             for name, version in prov.get("solvers", {}).items()]
    rows.append(("method", prov.get("method", "")))
    return rows


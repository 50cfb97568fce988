"""The HTML report: one self-contained file with the Table 2-shaped table, the figures, the
scenario text, the data provenance and the solver (no script or image fetched from anywhere).

Figures are also written beside it under ``figures/`` as PNG and SVG (and each Sankey as an
interactive HTML file of its own).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import jinja2
import markdown
import xarray as xr

from . import figures
from ..cases import CASES, Case
from ..chemistry import MATERIALS
from ..statistics.inputs import data_dir
from ..network import Network
from ..publish import write_file

REPORT_HTML = "report.html"

TEMPLATE = jinja2.Template("""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Chokepoint report: {{ name }}</title>
<style>
 body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1150px; color: #222; }
 h1 { font-size: 1.6em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ccc; }
 table.vi { border-collapse: collapse; margin: 0.6em 0 1.2em; }
 table.vi th, table.vi td { border: 1px solid #ccc; padding: 3px 10px; text-align: right; }
 table.vi th:first-child, table.vi td:first-child { text-align: left; }
 table.vi caption { text-align: left; font-weight: bold; padding: 4px 0; }
 img { max-width: 100%; } pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
 .meta td { padding: 2px 12px 2px 0; vertical-align: top; }
</style></head><body>
<h1>Chokepoint: {{ name }}</h1>
<p>{{ description }}</p>
<table class="meta">
 <tr><td>Solver</td><td id="solver">{{ solver }}</td></tr>
 <tr><td>Networks</td><td>{{ networks }}</td></tr>
 <tr><td>Method</td><td>{{ method }}</td></tr>
 <tr><td>Chokepoint</td><td>{{ chokepoint_version }}</td></tr>
 {% if edits %}<tr><td>Edits</td><td>{{ edits }}</td></tr>{% endif %}
 {% if note %}<tr><td>Shown</td><td>{{ note }}</td></tr>{% endif %}
</table>

<h2>Vulnerability index (% of cathode output)</h2>
{% for block in tables %}
<table class="vi" id="table-{{ loop.index }}">
 <caption>{{ block.focal }}</caption>
 <tr><th>pair</th>{% for c in cases %}<th>{{ c.title }}</th>{% endfor %}</tr>
 {% for row in block.rows %}<tr><td>{{ row.pair }}</td>{% for c in cases %}
  <td data-focal="{{ block.focal }}" data-pair="{{ row.pair }}" data-case="{{ c.key }}">{{ row[c.key] }}</td>{% endfor %}</tr>
 {% endfor %}
</table>
{% endfor %}
<p>{% for c in cases %}<b>{{ c.title }}</b>: {{ c.description }}<br>{% endfor %}</p>

<h2>Vulnerability by focal set (Fig. 5 of the paper)</h2>
<img alt="vulnerability bars" src="data:image/png;base64,{{ bars }}">

{% if stages %}<h2>Stage contributions (Fig. 4 of the paper, simplified)</h2>
{% for label, img in stages %}<img alt="stage contributions {{ label }}" src="data:image/png;base64,{{ img }}">
{% endfor %}{% endif %}

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
{% if families %}<h3>Constraint families of the user</h3>
<table class="meta" id="families">
 <tr><th>family</th><th>title</th><th>cases</th><th>parameters</th><th>source</th></tr>
{% for f in families %}<tr><td><code>{{ f.name }}</code></td><td>{{ f.title }}</td>
<td>{{ f.cases|join(", ") }}</td><td>{{ f.parameters }}</td><td>{{ f.source }}</td></tr>
{% endfor %}</table>{% endif %}
<h3>The data</h3>
<div id="data-readme">{{ data_readme }}</div>
</body></html>
""", autoescape=jinja2.select_autoescape(default=True))


def _keep(fig, path: Path) -> str:
    """Save a figure under figures/ (PNG, SVG); return its PNG, base64, for inlining."""
    png = figures.save(fig, path)[0]
    return base64.b64encode(png.read_bytes()).decode()


def _tables(ds: xr.Dataset) -> list[dict]:
    out = []
    for focal in ds.focal.values:
        rows = []
        for c in ds.chemistry.values:
            for m in ds.material.values:
                sel = ds.vi.sel(focal=focal, chemistry=c, material=m)
                if not bool(sel.notnull().any()):
                    continue
                pair = c if m == "all" else f"{c}-{MATERIALS[m]}"
                rows.append({"pair": pair, **{k: f"{float(sel.sel(case=k)) * 100:.1f}"
                                              for k in ds.case.values}})
        out.append({"focal": str(focal), "rows": rows})
    return out


def _central(ds: xr.Dataset) -> tuple[xr.Dataset, str]:
    note = []
    if "variant" in ds.dims:
        ds = ds.isel(variant=0)
        note.append(f"variant 0 ({ds['variant_label'].item()}) of a sweep")
    if "sample" in ds.dims:
        ds = ds.sel(sample=0)
        note.append("the central sample")
    return ds, "; ".join(note)


def write_report(dataset: xr.Dataset, networks: dict[str, Network], scenario_text: str,
                 out_dir: Path, highlight: dict[str, frozenset[str]] | None = None,
                 highlight_label: str | None = None) -> Path:
    """Write ``report.html`` and ``figures/`` into ``out_dir``; returns the report's path."""
    out_dir = Path(out_dir)
    fig_dir = out_dir / "figures"
    full = dataset
    ds, note = _central(dataset)
    bars = _keep(figures.vulnerability_bars(ds), fig_dir / "vulnerability_bars")
    stages = []
    if "vi_cumulative" in ds:
        for f in map(str, ds.focal.values):
            stages.append((f, _keep(figures.stage_contributions(ds, f),
                                    fig_dir / f"stages_{_slug(f)}")))
    sens = None
    if "sample" in full.dims:
        sfull = full.isel(variant=0) if "variant" in full.dims else full
        sens = _keep(figures.sensitivity(sfull), fig_dir / "sensitivity")
    sankeys = []
    highlight = highlight or {}
    for i, (material, net) in enumerate(networks.items()):
        fig = figures.sankey(net, highlight.get(material, ()))
        figures.write_sankey(fig, fig_dir / f"sankey_{material}")
        sankeys.append(fig.to_html(full_html=False, include_plotlyjs=(i == 0),
                                   config={"displaylogo": False}))
    prov = json.loads(ds.attrs.get("provenance", "{}"))
    ours = prov.get("chokepoint", "unknown")
    readme = data_dir() / "README.md"
    cases = [{"key": c, "title": CASES[Case(c)].title.split(" (")[0],
              "description": CASES[Case(c)].description} for c in ds.case.values]
    html = TEMPLATE.render(
        name=ds.attrs.get("scenario", "scenario"), description=ds.attrs.get("description", ""),
        solver=ds.attrs.get("solver", ""), networks=ds.attrs.get("networks", ""),
        method=ds.attrs.get("source_method", ""), chokepoint_version=ours,
        edits=ds.attrs.get("edits", "") if ds.attrs.get("edits", "[]") != "[]" else "",
        note=note, tables=_tables(ds), cases=cases, bars=bars, stages=stages,
        sensitivity=sens, sankeys=[jinja2.utils.markupsafe.Markup(s) for s in sankeys],
        highlight=(f"arcs out of {highlight_label}'s nodes highlighted" if highlight_label
                   else "no focal set highlighted"),
        scenario_text=scenario_text, provenance=_provenance_rows(prov),
        families=json.loads(ds.attrs.get("constraint_families", "[]")),
        data_readme=jinja2.utils.markupsafe.Markup(markdown.markdown(
            readme.read_text(encoding="utf-8"), extensions=["tables"]))
        if readme.is_file() else "(no data/)")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / REPORT_HTML
    write_file(path, html)
    return path


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


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text).strip("_").lower()

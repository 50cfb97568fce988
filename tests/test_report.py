"""The report and its figures: opened in headless Chromium, reproducible, self-contained."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import matplotlib.image as mpimg
import pytest

from chokepoint.outputs import figures
from chokepoint.api import run
from chokepoint.statistics.mfa import build_network
from chokepoint.statistics.inputs import Inputs

from conftest import write_scenario

SCENARIO = """\
name: report-test
description: LFP lithium for China and Chile
network: {year: 2020}
pairs: [LFP-lithium, NCM-cobalt]
focal:
  China: [China]
  Chile: [Chile]
"""
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    res = run(write_scenario(tmp, SCENARIO), out=tmp / "out", report=True)
    return res, tmp / "out" / "report.html"


def test_report_is_self_contained(report):
    _, path = report
    html = path.read_text(encoding="utf-8")
    # nothing fetched: no script, image or stylesheet with a remote address (plotly.js itself
    # mentions map-tile URLs that a Sankey never loads)
    assert not re.search(r"<(script|img|link)\b[^>]*(src|href)=[\"']?(https?:)?//", html)
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', html)) == 2  # bars, stages
    assert "name: report-test" in html and 'id="provenance"' in html and 'id="solver"' in html
    figs = path.parent / "figures"
    static = ["vulnerability_bars", "stage_contributions"]
    if CHROMIUM:  # kaleido draws the static Sankeys in the installed browser
        static += ["sankey_lithium", "sankey_cobalt"]
    else:  # without one the report says so, and keeps the interactive Sankeys
        assert "static Sankey images need Chrome or Chromium" in html
    for name in static:
        assert (figs / f"{name}.png").stat().st_size > 5000
        assert (figs / f"{name}.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
    assert "plotly" in (figs / "sankey_lithium.html").read_text()[:200000].lower()


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs "
                    "Debian's chromium package)")
def test_report_in_headless_chromium(report, tmp_path):
    res, path = report
    shot = tmp_path / "shot.png"
    profile = tmp_path / "profile"
    subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--window-size=1200,1600",
                    f"--screenshot={shot}", path.as_uri()], check=True, timeout=120,
                   capture_output=True)
    img = mpimg.imread(shot)[..., :3]
    assert img.shape[0] >= 1000 and img.shape[1] >= 1000
    not_white = (img < 0.95).any(axis=2).mean()
    assert not_white > 0.02 and img.std() > 0.05, "the screenshot is blank"
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom",
                          path.as_uri()], check=True, timeout=120, capture_output=True,
                         text=True).stdout
    vi = float(res.dataset.vi.sel(focal="China", chemistry="LFP", material="lithium",
                                  case="proportional"))
    cell = (f'data-focal="China" data-pair="LFP-Li" data-case="proportional">'
            f'{vi * 100:.1f}<')
    assert cell in dom
    assert "js-plotly-plot" in dom  # the Sankey was drawn by the inlined plotly.js


def test_figures_are_reproducible(report, tmp_path):
    res, _ = report
    a = figures.save(figures.vulnerability_bars(res.dataset), tmp_path / "a")
    b = figures.save(figures.vulnerability_bars(res.dataset), tmp_path / "b")
    assert a[1].read_bytes() == b[1].read_bytes()  # SVG, byte for byte


def test_a_country_has_one_colour_in_every_material():
    inputs = Inputs.load(2020)
    seen = {}
    for material in ("lithium", "cobalt", "nickel"):
        net = build_network(material, inputs)
        fig = figures.sankey(net)
        node = fig.data[0].node
        for n, c in zip(net.nodes.index, node.color):
            owner = net.nodes.loc[n, "owner"]
            if net.nodes.loc[n, "stage"].value in ("mine", "refining", "cathode_pool"):
                assert seen.setdefault(owner, c) == c, owner
    assert seen["China"] == figures.NAMED["CHN"]


def test_provenance_names_code_data_and_solver_without_the_users_folders(report):
    """results.nc and the report carry version, commit, the data's SHA-256, the solver and its
    version, and no absolute path of the machine they were made on."""
    import json

    import xarray as xr

    res, path = report
    ds = xr.open_dataset(path.parent / "results.nc", engine="h5netcdf")
    prov = json.loads(ds.attrs["provenance"])
    assert prov["chokepoint"] and prov["solvers"]["highspy"]
    assert set(prov["inputs"]) == {"production_2020.yaml", "materials.yaml", "countries.yaml",
                                   "trade_2017_2021.csv.gz"}
    assert all(v.startswith("sha256:") and len(v) == 71 for v in prov["inputs"].values())
    assert prov["git_commit"] is None or re.fullmatch(r"[0-9a-f]{40}(\+dirty)?",
                                                      prov["git_commit"])
    home = str(path.parent.parent.parent)
    text = json.dumps({k: str(v) for k, v in ds.attrs.items()})
    assert home not in text and "/work/" not in text and "/home/" not in text
    html = path.read_text(encoding="utf-8")
    assert prov["inputs"]["materials.yaml"] in html and "solver highspy" in html
    assert home not in html


SWEEP = """\
name: report-sweep
description: four materials, a sweep over a moved share, a focal country with no node
network: {year: 2020}
pairs: [NCM-nickel, LMO-manganese, NCM-cobalt, LFP-lithium]
stage_contributions: false
focal:
  China: [China]
  Iceland: [Iceland]
sweep:
  edits:
    - []
    - [{kind: move_production, from: China, to: [Korea, Japan], stage: cathode, share: 0.5}]
"""
PAPER_ORDER = ["LFP-Li", "NCM-Co", "NCM-Ni", "NCM", "LMO-Mn"]  # the scenario lists them shuffled


@pytest.fixture(scope="module")
def sweep_report(tmp_path_factory):
    """The sweep run as a user runs it: the command line, in its own process."""
    tmp = tmp_path_factory.mktemp("sweep-report")
    scen = write_scenario(tmp, SWEEP)
    r = subprocess.run([sys.executable, "-m", "chokepoint.cli", "run", str(scen), "--out",
                        str(tmp / "out"), "--report", "--workers", "1"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return r, tmp / "out"


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs "
                    "Debian's chromium package)")
def test_a_sweeps_report_shows_one_grid_per_variant_by_its_swept_values(sweep_report, tmp_path):
    """Opened in headless Chromium: each variant's grid is captioned by the value it swept and
    holds every (focal, pair, case) cell with the index of results.nc."""
    import xarray as xr

    _, out = sweep_report
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                          "--dump-dom", (out / "report.html").as_uri()], check=True,
                         timeout=120, capture_output=True, text=True).stdout
    ds = xr.open_dataset(out / "results.nc", engine="h5netcdf")
    grids = re.findall(r'<table class="grid" id="grid-\d+">(.*?)</table>', dom, re.S)
    assert len(grids) == 2
    assert "variant 0: edits = []" in dom
    assert ('variant 1: edits = [{"from": "China", "kind": "move_production", "share": 0.5, '
            '"stage": "cathode", "to": ["Korea", "Japan"]}]') in dom.replace("&quot;", '"')
    for v, grid in enumerate(grids):
        cells = dict(((f, p, c), float(x)) for f, p, c, x in re.findall(
            rf'data-focal="([^"]+)" data-pair="([^"]+)" data-case="([^"]+)" '
            rf'data-variant="{v}">([\d.]+)<', grid))
        assert len(cells) == 2 * len(PAPER_ORDER) * 4
        for (focal, pair, case), shown in cells.items():
            chem, _, short = pair.partition("-")
            material = {"Li": "lithium", "Co": "cobalt", "Ni": "nickel", "Mn": "manganese",
                        "": "all"}[short]
            vi = float(ds["vi"].isel(variant=v).sel(focal=focal, chemistry=chem,
                                                     material=material, case=case))
            assert shown == round(100 * vi, 1), (v, focal, pair, case)
    # the move changes China's cells and not Iceland's
    assert grids[0].count('style="background') == grids[1].count('style="background')
    assert float(ds["vi"].isel(variant=1).sel(focal="China", chemistry="NCM",
                                              material="cobalt", case="proportional")) < \
        float(ds["vi"].isel(variant=0).sel(focal="China", chemistry="NCM", material="cobalt",
                                           case="proportional"))


def test_a_report_with_four_sankeys_includes_plotly_once_and_stays_under_6_mb(sweep_report):
    _, out = sweep_report
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.count('class="plotly-graph-div"') == 4
    assert html.count("plotly.js v") == 1
    assert (out / "report.html").stat().st_size < 6_000_000
    # the stand-alone Sankeys share one plotly.js beside them
    figs = out / "figures"
    assert (figs / "plotly.min.js").stat().st_size > 1_000_000
    for material in ("lithium", "cobalt", "nickel", "manganese"):
        page = (figs / f"sankey_{material}.html").read_text(encoding="utf-8")
        assert '<script charset="utf-8" src="plotly.min.js">' in page and len(page) < 200_000


def test_the_report_warns_what_a_domain_expert_must_know(sweep_report):
    r, out = sweep_report
    html = (out / "report.html").read_text(encoding="utf-8")
    warns = re.findall(r'<p class="warn">(.*?)</p>', html, re.S)
    nodes = "Iceland owns no node of the lithium, cobalt, nickel, manganese networks"
    assert any(w.startswith(nodes) for w in warns)
    pinned = [w for w in warns if w.startswith("pessimistic B is 100% only because")]
    # China's LFP-Li pessimistic A is 93.2%, its B 100%: pinned by uncertain sources; its
    # LMO-Mn is 100% in A already, so not a warning -- until the move brings A to 74.6%.
    # The move changes NCM-Co's A too (69.7% to 41.3%), so each variant has its own line.
    assert len(pinned) == 2
    assert "variant 0: China: LFP-Li (A 93%), NCM-Co (A 70%)" in pinned[0]
    assert "variant 1: China: LFP-Li (A 93%), NCM-Co (A 41%)" in pinned[1]
    assert "LMO-Mn" not in pinned[0] and "LMO-Mn (A 75%)" in pinned[1]
    assert nodes in r.stderr  # and the terminal says the same, and results.nc keeps it
    import html as html_text
    import json

    import xarray as xr

    kept = json.loads(xr.open_dataset(out / "results.nc", engine="h5netcdf").attrs["notes"])
    assert any(n.startswith(nodes) for n in kept) and html_text.unescape(pinned[0]) in kept


def test_provenance_and_the_data_are_tables_not_raw_text(sweep_report):
    _, out = sweep_report
    html = (out / "report.html").read_text(encoding="utf-8")
    prov = re.search(r'<table class="meta" id="provenance">(.*?)</table>', html, re.S).group(1)
    rows = dict(re.findall(r"<tr><td>(.*?)</td><td><code>(.*?)</code></td></tr>", prov))
    assert rows["solver highspy"] and rows["input materials.yaml"].startswith("sha256:")
    data = re.search(r'<div id="data-readme">(.*?)</div>', html, re.S).group(1)
    assert "<table>" in data and "| file |" not in data


def test_the_data_section_reads_as_the_docs_site_shows_it(sweep_report):
    """data/README.md's body as docs/data.md includes it: a fenced block is a code block (no
    ```bash showing), no path of the developers' machine, headings below the report's h3."""
    _, out = sweep_report
    html = (out / "report.html").read_text(encoding="utf-8")
    data = re.search(r'<div id="data-readme">(.*?)</div>', html, re.S).group(1)
    assert '<pre><code class="language-bash">chokepoint data import-trademap' in data
    assert "```" not in data and "../shared" not in html and "--8&lt;--" not in data
    levels = {int(n) for n in re.findall(r"<h(\d)", data)}
    assert levels == {4}, levels  # "## The trade table" under "<h3>The data"
    assert re.search(r"<h3>The data</h3>\s*<div id=\"data-readme\">", html)


def test_one_pair_order_everywhere(sweep_report, tmp_path):
    """Terminal, report, CSV and `rank` list the pairs in the paper's order, whatever order
    the scenario gives."""
    import pandas as pd

    r, out = sweep_report
    terminal = re.findall(r"^  (\S+) +[\d.]+ ", r.stdout, re.M)
    assert terminal[:len(PAPER_ORDER)] == PAPER_ORDER
    html = (out / "report.html").read_text(encoding="utf-8")
    grid = re.search(r'<table class="grid" id="grid-1">(.*?)</table>', html, re.S).group(1)
    assert re.findall(r'<th class="pair"[^>]*>([^<]+)</th>', grid) == PAPER_ORDER
    csv = pd.read_csv(out / "vulnerability.csv")
    pairs = list(dict.fromkeys(zip(csv["chemistry"], csv["material"])))
    assert pairs == [("LFP", "lithium"), ("NCM", "cobalt"), ("NCM", "nickel"), ("NCM", "all"),
                     ("LMO", "manganese")]
    ranked = subprocess.run([sys.executable, "-m", "chokepoint.cli", "rank", "--top", "1",
                             "--out", str(tmp_path)], capture_output=True, text=True,
                            timeout=600)
    assert ranked.returncode == 0, ranked.stderr
    heads = re.findall(r"^(\S+), countries ranked", ranked.stdout, re.M)
    assert heads == ["LFP-Li", "NCM-Li", "NCM-Co", "NCM-Ni", "NCM-Mn"]


FAMILIES = """\
name: report-families
description: a sweep switching a YAML family on and off, a focal country with no node
network: {year: 2020, profile: paper}
pairs: [LFP-lithium, NCM-cobalt]
stage_contributions: false
focal:
  China: [China]
  Chile: [Chile]
  Iceland: [Iceland]
constraints:
  large_links:
    title: Large trade links into cathode makers
    foreach: arcs
    where: target_stage == cathode_pool and tonnes > 1000
    equation: touched <= tonnes * (share + focal_source)
    parameters: {share: 0.5}
sweep:
  families.large_links: [true, false]
"""


@pytest.fixture(scope="module")
def families_report(tmp_path_factory):
    """A sweep over a user family, run from the command line, with its report."""
    tmp = tmp_path_factory.mktemp("families-report")
    r = subprocess.run([sys.executable, "-m", "chokepoint.cli", "run",
                        str(write_scenario(tmp, FAMILIES)), "--out", str(tmp / "out"),
                        "--report", "--workers", "1"], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    return r, tmp / "out"


def _cells(dom: str) -> list[dict]:
    """Every grid cell of a rendered page: its attributes and text."""
    out = []
    for attrs, text in re.findall(r"<td ([^>]*data-focal[^>]*)>([^<]*)</td>", dom):
        cell = dict(re.findall(r'([\w-]+)="([^"]*)"', attrs))
        out.append({**cell, "text": text})
    return out


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs "
                    "Debian's chromium package)")
def test_the_rendered_report_marks_cells_0_by_construction_and_names_active_families(
        families_report, tmp_path):
    """In Chromium's DOM: exactly the cells of a focal set that owns no node of the pair's
    network are marked, with the reason on hover; pessimistic B is marked a data-gap bound,
    with a mark exactly where it is 10 points or more above A; each variant's grid names the
    user families active in it by title, with their parameters."""
    import html as html_text

    import xarray as xr

    from chokepoint.api import prepare

    _, out = families_report
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                          "--dump-dom", (out / "report.html").as_uri()], check=True,
                         timeout=120, capture_output=True, text=True).stdout
    ds = xr.open_dataset(out / "results.nc", engine="h5netcdf")
    _, networks, focal_sets = prepare(out.parent / "scenario.yaml")
    owns = {fs.label: {m for m, n in networks.items() if fs.nodes(n)} for fs in focal_sets}
    assert owns["Iceland"] == set() and owns["Chile"] == {"lithium"}  # the test's premise
    material = {"LFP-Li": "lithium", "NCM-Co": "cobalt"}
    cells = _cells(dom)
    assert len(cells) == 2 * 3 * 2 * 4  # variants x focal sets x pairs x cases
    for c in cells:
        classes = c.get("class", "").split()
        by_construction = material[c["data-pair"]] not in owns[c["data-focal"]]
        assert ("construction" in classes) == by_construction, c
        sel = ds["vi"].isel(variant=int(c["data-variant"])).sel(
            focal=c["data-focal"], chemistry=c["data-pair"][:3],
            material=material[c["data-pair"]])
        if by_construction:
            why = html_text.unescape(c["title"])
            assert why == (f"0 by construction: {c['data-focal']} owns no node of the "
                           f"{material[c['data-pair']]} network, not a finding")
            assert float(sel.sel(case=c["data-case"])) == 0 and "style" not in c
        elif c["data-case"] == "pessimistic_b":
            gap = float(sel.sel(case="pessimistic_b") - sel.sel(case="pessimistic_a"))
            assert "bound" in classes and ("gap" in classes) == (gap >= 0.10), c
        else:
            assert not classes and "hsl(0, 0%" not in c["style"]
    assert any("gap" in c.get("class", "") for c in cells)  # China's NCM-Co: A 70%, B 100%
    captions = re.findall(r"<caption>(.*?)</caption>", dom, re.S)
    assert len(captions) == 2
    assert "variant 0: families.large_links = on" in captions[0]
    assert re.search(r'data-family="large_links">Large trade links into cathode makers\s*'
                     r'<code>large_links\(share=0.5\)</code>', captions[0])
    assert "variant 1: families.large_links = off" in captions[1]
    assert "data-family" not in captions[1] and "none (core method" in captions[1]
    active = re.search(r'<div id="active-families">(.*?)</div>', dom, re.S).group(1)
    assert "differ by variant" in active


def test_the_terminal_says_which_families_each_variant_ran_with(families_report):
    r, _ = families_report
    blocks = re.split(r"^(?=variant \d+: )", r.stdout, flags=re.M)[1:]
    assert blocks[0].startswith("variant 0: families.large_links=on\n"
                                "  user constraint families active:\n"
                                "    Large trade links into cathode makers: "
                                "large_links(share=0.5)\n"
                                "China: vulnerability index")
    assert blocks[1].startswith("variant 1: families.large_links=off\n"
                                "  user constraint families active: none (the core method "
                                "only)\nChina: vulnerability index")


def test_a_single_runs_table_and_report_name_its_families_and_parameters(tmp_path):
    """Not a sweep: the table opens with the active families, by title, with the parameters
    the run used (a --set value, not the default); a core run's table does not."""
    body = FAMILIES.split("sweep:")[0].replace("  Chile: [Chile]\n", "").replace(
        "  Iceland: [Iceland]\n", "").replace("NCM-cobalt", "NCM-lithium")
    scen = write_scenario(tmp_path, body)
    r = subprocess.run([sys.executable, "-m", "chokepoint.cli", "run", str(scen), "--out",
                        str(tmp_path / "out"), "--report", "--set",
                        "parameters.large_links.share=0.25"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    at = r.stdout.index("user constraint families active:")  # after the solver's banner
    assert "vulnerability index" not in r.stdout[:at]
    assert r.stdout[at:].startswith("user constraint families active:\n"
                               "  Large trade links into cathode makers: "
                               "large_links(share=0.25)\n\nChina: vulnerability index")
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    active = re.search(r'<div id="active-families">(.*?)</div>', html, re.S).group(1)
    assert re.search(r'data-family="large_links"><b>Large trade links into cathode makers</b>'
                     r':\s*<code>large_links\(share=0.25\)</code>, in Optimistic, Pessimistic A,'
                     r' Pessimistic B; rows: lithium \d+</li>', active)
    core = run(write_scenario(tmp_path, body.split("constraints:")[0], "core.yaml"),
               write_files=False)
    assert core.table.startswith("China: vulnerability index")


def test_fig5_draws_no_baseline_dashes_no_crowded_markers_and_no_title(report):
    """Whiskers only where optimistic and pessimistic A differ, no cap on the baseline,
    pessimistic B as one bar-wide dash where it is above A, and no title repeating the
    report's heading."""
    from matplotlib.collections import LineCollection

    res, _ = report
    ds = res.dataset
    fig = figures.vulnerability_bars(ds)
    ax = fig.axes[0]
    assert ax.get_title() == "" and not [line for line in ax.lines if line.get_marker() == "v"]
    segments = [seg for coll in ax.collections if isinstance(coll, LineCollection)
                for seg in coll.get_segments()]
    flat = [seg for seg in segments if abs(seg[0][1] - seg[1][1]) < 1e-9]  # caps, B dashes
    assert flat and all(seg[0][1] > 0.2 for seg in flat), "a dash on the baseline"
    b = ds["vi"].sel(case="pessimistic_b", material=["lithium", "cobalt"]) * 100
    a = ds["vi"].sel(case="pessimistic_a", material=["lithium", "cobalt"]) * 100
    dashes = [seg for seg in flat if seg[0][1] >= 99.99]
    assert len(dashes) == int(((b >= 99.99) & (b > a + 0.2)).sum())
    width = 0.8 / ds.sizes["focal"]
    assert all(abs((s[1][0] - s[0][0]) - 0.84 * width) < 1e-9 for s in dashes)
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_the_stage_heat_map_hatches_cells_0_by_construction(report):
    """One heat map: a cell per focal set, pair and step, labelled with the proportional
    index at that step, hatched grey where the focal set owns no node of the network."""
    from matplotlib.patches import Rectangle

    res, _ = report
    ds = res.dataset
    owns = {"China": {"lithium", "cobalt"}, "Chile": {"lithium"}}
    fig = figures.stage_contributions(ds, owns=owns)
    ax = fig.axes[0]
    hatched = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_hatch()]
    assert len(hatched) == 3  # Chile x NCM-Co x 3 steps
    assert {p.get_y() + 0.5 for p in hatched} == {1}  # the row of Chile
    labels = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text()
              for t in ax.texts}
    steps = list(ds.stage.values)
    for i, f in enumerate(["China", "Chile"]):
        for g, (c, m) in enumerate([("LFP", "lithium"), ("NCM", "cobalt")]):
            for k, s in enumerate(steps):
                v = float(ds.vi_cumulative.sel(focal=f, chemistry=c, material=m,
                                               case="proportional", stage=s)) * 100
                cell = labels.get((i, g * len(steps) + k))
                assert cell == (None if m not in owns[f] else f"{v:.0f}")
    import matplotlib.pyplot as plt

    plt.close(fig)

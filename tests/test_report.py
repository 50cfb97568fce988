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
    assert html.count("data:image/png;base64,") >= 3  # bars + a stage plot per focal set
    assert "name: report-test" in html and 'id="provenance"' in html and 'id="solver"' in html
    figs = path.parent / "figures"
    static = ["vulnerability_bars", "stages_china"]
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
    assert "<table>" in data and "| file |" not in data and "<h1>" in data


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

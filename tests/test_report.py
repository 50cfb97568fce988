"""The report and its figures: opened in headless Chromium, reproducible, self-contained."""

from __future__ import annotations

import re
import shutil
import subprocess

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
    for name in ("vulnerability_bars", "stages_china", "sankey_lithium", "sankey_cobalt"):
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

"""Every example in the documentation runs, in a scratch copy of the project's scenarios.

Blocks run in order, so a later block may use what an earlier one wrote (the API page's in an
empty folder, as its examples must work from any folder): ``python`` blocks
execute, ``bash`` blocks run (their ``pip install`` and ``pytest`` lines are what this test
environment and this test already are), ``yaml`` blocks validate (a whole scenario as it is; a
snippet merged into a small base scenario). ``<!-- test: file NAME -->`` before a block writes
it to NAME instead; ``<!-- test: skip REASON -->`` skips it. Output blocks (no language) are
not run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("**/*.md"))
BASE = {"name": "snippet", "network": {"year": 2020}, "pairs": ["NCM-lithium"],
        "stage_contributions": False, "focal": {"China": ["China"]}}


@dataclass
class Block:
    lang: str
    text: str
    line: int
    marker: str | None


def blocks(path: Path) -> list[Block]:
    out, marker = [], None
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"\s*<!-- test: (.*?) -->", lines[i])
        if m:
            marker = m.group(1)
        fence = re.match(r"^(\s*)```(\w*)\s*$", lines[i])
        if fence:
            indent, lang = fence.groups()
            j = i + 1
            while not re.match(rf"^{indent}```\s*$", lines[j]):
                j += 1
            text = "\n".join(x[len(indent):] for x in lines[i + 1:j]) + "\n"
            if lang:
                out.append(Block(lang, text, i + 1, marker))
            marker = None
            i = j
        i += 1
    return out


def run_block(block: Block, where: Path, doc: str) -> None:
    at = f"{doc}:{block.line}"
    if block.marker and block.marker.startswith("skip"):
        return
    if block.marker and block.marker.startswith("file "):
        (where / block.marker.split(" ", 1)[1].strip()).write_text(block.text, encoding="utf-8")
        return
    if block.lang == "python":
        cmd = [sys.executable, "-c", block.text]
    elif block.lang in ("bash", "sh", "console"):
        kept = [x for x in block.text.splitlines()
                if not x.strip().startswith(("pip install", "pytest", "#"))]
        if not any(x.strip() for x in kept):
            return
        cmd = ["bash", "-euo", "pipefail", "-c", "\n".join(kept)]
    elif block.lang == "yaml":
        data = yaml.safe_load(block.text)
        if not isinstance(data, dict) or "name" not in data:
            data = {**BASE, **(data or {})}
        path = where / "_block.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        cmd = [sys.executable, "-m", "chokepoint.cli", "validate", str(path)]
    else:
        return
    res = subprocess.run(cmd, cwd=where, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, f"{at}: the example fails:\n{res.stdout[-2000:]}\n" \
                                f"{res.stderr[-3000:]}"


#: Pages whose examples must work from any folder: they run in an empty one.
ANYWHERE = {"docs/api.md"}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_example_runs(doc, tmp_path):
    if str(doc.relative_to(ROOT)) not in ANYWHERE:
        shutil.copytree(ROOT / "scenarios", tmp_path / "scenarios")
    found = blocks(doc)
    assert found or doc.name != "README.md"
    for block in found:
        run_block(block, tmp_path, str(doc.relative_to(ROOT)))


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """`mkdocs build --strict` (broken links, missing pages and bad references fail it)."""
    site = tmp_path_factory.mktemp("docs") / "site"
    res = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert res.returncode == 0, res.stdout + res.stderr
    return site


def test_site_builds_strictly_with_the_generated_parts(site):
    """The pages generated from the model hold what the model declares; the build's own code
    is not part of the site; no placeholder or remote asset in any page."""
    from chokepoint.lp import CORE_FAMILIES

    lp = (site / "lp" / "index.html").read_text(encoding="utf-8")
    assert all(name in lp for name in CORE_FAMILIES)
    scenarios = (site / "scenarios" / "index.html").read_text(encoding="utf-8")
    assert "solver_options" in scenarios and "move_production" in scenarios
    assert "chokepoint init" in (site / "cli" / "index.html").read_text(encoding="utf-8")
    assert "VulnerabilityLP" in (site / "api" / "index.html").read_text(encoding="utf-8")
    assert not list(site.rglob("hooks.py"))
    for page in site.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        assert ".invalid" not in html and "example.com" not in html, page
        remote = re.findall(r"<(?:script|link|img)\b[^>]*(?:src|href)=\"(?:https?:)?//[^\"]*",
                            html)
        assert not remote, (page, remote)
    assert (site / "assets" / "mathjax" / "tex-mml-chtml.js").is_file()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs "
                    "Debian's chromium package)")
def test_the_lp_page_shows_typeset_formulas_in_a_browser_with_no_network(site, tmp_path):
    """The built site, served from this machine, opened in headless Chromium that can resolve
    no other host: MathJax (from the site) has typeset every formula; no raw TeX is left."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/lp/"
        res = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
             "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
             "--virtual-time-budget=30000", "--dump-dom", url],
            capture_output=True, text=True, timeout=300)
    finally:
        server.shutdown()
    assert res.returncode == 0, res.stderr[-3000:]
    dom = res.stdout
    source = (site / "lp" / "index.html").read_text(encoding="utf-8")
    formulas = source.count('class="arithmatex"')
    assert formulas >= 10
    typeset = dom.count("<mjx-container")
    assert typeset >= formulas, f"{typeset} of {formulas} formulas typeset"
    text = re.sub(r"<script\b.*?</script>", "", dom, flags=re.S)
    raw = re.findall(r"\\[(\[][^<]{0,40}", text)
    assert not raw, f"raw TeX left on the page: {raw[:5]}"

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


def test_site_builds_strictly_with_the_generated_parts(tmp_path):
    """`mkdocs build --strict` (broken links, missing pages and bad references fail it); the
    pages generated from the model hold what the model declares."""
    from chokepoint.lp import CORE_FAMILIES

    site = tmp_path / "site"
    res = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env={**__import__("os").environ, "NO_MKDOCS_2_WARNING": "1"})
    assert res.returncode == 0, res.stdout + res.stderr
    lp = (site / "lp" / "index.html").read_text(encoding="utf-8")
    assert all(name in lp for name in CORE_FAMILIES)
    scenarios = (site / "scenarios" / "index.html").read_text(encoding="utf-8")
    assert "solver_options" in scenarios and "move_production" in scenarios
    assert "chokepoint init" in (site / "cli" / "index.html").read_text(encoding="utf-8")
    assert "VulnerabilityLP" in (site / "api" / "index.html").read_text(encoding="utf-8")

"""Shared fixtures: tiny hand-checkable networks, and the authors' data beside the project."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chokepoint.network import Network

ROOT = Path(__file__).resolve().parents[1]
#: The authors' five published 2020 flows (MIT; licence beside them), shipped as fixtures so
#: that every check against the paper runs on every clone.
FLOWS = Path(__file__).resolve().parent / "fixtures" / "cheng2024" / "flows"
#: The authors' whole data release (raw Trade Map downloads), for the raw-data checks:
#: $CHOKEPOINT_RELEASE, else ../shared/data/cheng2024 beside the project.
SHARED = Path(os.environ.get("CHOKEPOINT_RELEASE",
                             ROOT.parent / "shared" / "data" / "cheng2024"))

#: Its raw Trade Map downloads: ``trademap/`` in the layout beside this project, ``Raw TradeMap
#: Data/`` in the authors' repository (github.com/acheng98/ev-battery-chemistry-supply-chain-
#: vulnerabilities).
TRADEMAP = next((SHARED / d for d in ("trademap", "Raw TradeMap Data")
                 if (SHARED / d).is_dir()), SHARED / "trademap")

#: Checks that read the raw downloads of the release; collected only where it is (see
#: pytest_collection_modifyitems), so that a fresh clone runs everything else and skips nothing.
needs_release = pytest.mark.release

# Australia and Chile mine, China refines, Japan and Korea make cathode; Korea also receives
# material of unknown origin (TFCR) and sells some cathode outside batteries (NBCP).
#
#   Australia_mine 60 ┐                         ┌ 50 Japan_cath_poss ── 50 ─> LFP
#                     ├> China_ref_poss ─100─> China_ref
#   Chile_mine     40 ┘                         └ 50 Korea_cath_poss ┬ 45 ─> LFP
#                                  TFCR ── 25 ─────────┘             └ 30 ─> NBCP
TINY_ARCS = [
    ("Australia_mine", "China_ref_poss", 60.0),
    ("Chile_mine", "China_ref_poss", 40.0),
    ("China_ref_poss", "China_ref", 100.0),
    ("China_ref", "Japan_cath_poss", 50.0),
    ("China_ref", "Korea, Republic of_cath_poss", 50.0),
    ("Trade from countries with no refining", "Korea, Republic of_cath_poss", 25.0),
    ("Japan_cath_poss", "LFP", 50.0),
    ("Korea, Republic of_cath_poss", "LFP", 45.0),
    ("Korea, Republic of_cath_poss", "Non-Battery Cathode Products", 30.0),
]


@pytest.fixture
def tiny() -> Network:
    return Network.from_arcs(TINY_ARCS, material="lithium", year=2020, origin="tiny")


@pytest.fixture
def tiny_flows(tmp_path) -> Path:
    """A flows folder holding the tiny network as lithium_2020.csv."""
    folder = tmp_path / "flows"
    folder.mkdir()
    Network.from_arcs(TINY_ARCS, material="lithium").to_csv(folder / "lithium_2020.csv")
    return folder


def write_scenario(tmp_path: Path, body: str, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


TINY_SCENARIO = """\
name: tiny
network:
  flows: flows
  year: 2020
pairs: [LFP-lithium]
focal:
  Australia: [Australia]
  China: [China]
"""


def pytest_configure(config):
    config.addinivalue_line("markers", "release: reads the raw downloads of the authors' data "
                            "release (collected only where it is found)")


def pytest_collection_modifyitems(config, items):
    if TRADEMAP.is_dir():
        return
    kept = [i for i in items if i.get_closest_marker("release") is None]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept


def pytest_report_header(config):
    where = TRADEMAP
    return (f"raw-data checks: on the release at {SHARED}" if where.is_dir() else
            f"raw-data checks: not collected ({where} is absent; point CHOKEPOINT_RELEASE at "
            "the authors' data release to run them)")

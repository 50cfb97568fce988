"""Shared fixtures: tiny hand-checkable networks, and the authors' data beside the project."""

from __future__ import annotations

from pathlib import Path

import pytest

from chokepoint.network import Network

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "cheng2024"
FLOWS = SHARED / "flows"

needs_shared = pytest.mark.skipif(
    not FLOWS.is_dir(),
    reason=f"the authors' data release is not beside the project ({SHARED} is absent)",
)

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

"""A scenario's networks: read from flows files, or built from the statistics under ``data/``
(the material-flow step, after counterfactual edits)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from .errors import NetworkError
from .network import Network


def load_network(path: str | Path, material: str | None = None,
                 year: int | None = None, close_imbalances: bool = False) -> Network:
    """Read a network in the published flows format; material and year default to the file
    name's ``<material>_<year>.csv``."""
    path = Path(path)
    match = re.fullmatch(r"([a-z]+)_(\d{4})", path.stem)
    if match:
        material = material or match.group(1)
        year = year or int(match.group(2))
    return Network.read_csv(path, material=material or path.stem, year=year,
                            close_imbalances=close_imbalances)


def load_networks(folder: str | Path, materials: Iterable[str], year: int,
                  close_imbalances: bool = False) -> dict[str, Network]:
    """``<material>_<year>.csv`` from a folder, for each material."""
    folder = Path(folder)
    out = {}
    for m in materials:
        path = folder / f"{m}_{year}.csv"
        if not path.exists():
            have = sorted(p.name for p in folder.glob("*.csv"))
            raise NetworkError(f"{path}: no {m} network for {year} in {folder} "
                               f"(found: {', '.join(have) or 'no CSV files'})")
        out[m] = load_network(path, m, year, close_imbalances)
    return out


def build_networks(materials: Iterable[str], year: int = 2020, profile: str = "paper",
                   data: str | Path | None = None, edits: Sequence = (),
                   where: str = "edits") -> dict[str, Network]:
    """Networks built from the statistics under ``data/`` (the material-flow step), after the
    counterfactual ``edits`` (see :mod:`chokepoint.counterfactual`)."""
    from .statistics.counterfactual import apply_edits
    from .statistics.inputs import Inputs

    inputs = apply_edits(Inputs.load(year, data), edits, where)
    return build_from_inputs(materials, inputs, profile)


def build_from_inputs(materials: Iterable[str], inputs, profile: str) -> dict[str, Network]:
    from .statistics.mfa import build_network

    return {m: build_network(m, inputs, profile) for m in materials}


def owners(networks: Mapping[str, Network]) -> list[str]:
    """Every owner of a country node in these networks, sorted."""
    return sorted({o for n in networks.values() for o in n.owners})

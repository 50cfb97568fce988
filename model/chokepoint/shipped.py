"""What the package ships, and where it finds it: the statistics (``data/``) and the scenarios
(``scenarios/``, with ``scenarios/scaffold/``, what ``chokepoint init`` copies).

An installed wheel carries both inside the package (``chokepoint/_shipped/``, mapped in from the
repository's top-level folders by the build: ``force-include`` in pyproject.toml), read with
:mod:`importlib.resources`; an editable checkout reads the top-level folders themselves.
``CHOKEPOINT_DATA`` points the data folder elsewhere.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from .errors import ChokepointError, did_you_mean

DATA_ENV = "CHOKEPOINT_DATA"


def _shipped(name: str) -> Path:
    inside = resources.files(__package__).joinpath("_shipped", name)
    if inside.is_dir():
        return Path(str(inside))
    checkout = Path(__file__).resolve().parents[2] / name
    if checkout.is_dir():
        return checkout
    raise ChokepointError(f"the package's {name}/ folder is missing (looked in {inside} and "
                          f"{checkout}); reinstall chokepoint")


def data_dir() -> Path:
    """``$CHOKEPOINT_DATA`` if set (it must be a folder), else the shipped ``data/``."""
    env = os.environ.get(DATA_ENV)
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise ChokepointError(f"{DATA_ENV}={env}: no such folder (unset it to use the data "
                                  "chokepoint ships)")
        return path
    return _shipped("data")


def scenarios_dir() -> Path:
    """The shipped scenarios (``paper_2020.yaml``, ``blocs.yaml``, ...)."""
    return _shipped("scenarios")


def scaffold_dir() -> Path:
    """What ``chokepoint init`` copies: a commented scenario and the rules it loads."""
    return scenarios_dir() / "scaffold"


def shipped_scenarios() -> dict[str, Path]:
    """Shipped scenarios by name: file stem (``paper_2020``) and the stem with dashes."""
    out = {}
    for p in sorted(scenarios_dir().glob("*.yaml")):
        if p.stem != "blocs":
            out[p.stem] = p
            out[p.stem.replace("_", "-")] = p
    return out


def scenario_path(ref: str | os.PathLike) -> Path:
    """A scenario file: ``ref`` itself when it is a file, else the shipped scenario of that
    name; an error names the shipped ones, with a suggestion."""
    path = Path(ref)
    # a FIFO or device named so is the user's file (refused when read), not a shipped name
    if (path.exists() and not path.is_dir()) or path.suffix in (".yaml", ".yml") or \
            os.sep in str(ref):
        return path
    shipped = shipped_scenarios()
    if str(ref) in shipped:
        return shipped[str(ref)]
    names = sorted({p.stem for p in shipped.values()})
    raise ChokepointError(f"{ref}: no such scenario file, nor a shipped scenario"
                          f"{did_you_mean(str(ref), names)} (shipped: {', '.join(names)})")

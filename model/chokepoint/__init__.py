"""Chokepoint: how exposed is the world's EV battery supply to a disruption in one country?

The vulnerability index of Cheng, Fuchs, Karplus & Michalek (Nature Communications 15, 2143,
2024) as an explicit Pyomo LP. Pipeline: statistics -> network -> LP -> index -> results.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# The public names are imported on first use (PEP 562): `chokepoint --help` and a command that
# never touches the LP do not pay for pandas, xarray, scipy and HiGHS at start.
_PUBLIC = {
    "RunResult": ".api", "build_networks": ".api", "load_network": ".api",
    "load_networks": ".api", "run": ".api", "vulnerability": ".api",
    "Case": ".cases", "Pair": ".chemistry", "ChokepointError": ".errors",
    "FocalSet": ".focal", "ConstraintFamily": ".lp", "Indexed": ".lp",
    "constraint_family": ".lp",
    "Network": ".network", "Stage": ".network",
}

__all__ = [
    "Case", "ChokepointError", "ConstraintFamily", "FocalSet", "Indexed", "Network", "Pair",
    "RunResult",
    "Stage", "constraint_family",
    "build_networks", "load_network", "load_networks", "run", "vulnerability",
]
__version__ = "0.1.0"

if TYPE_CHECKING:
    from .api import RunResult, build_networks, load_network, load_networks, run, vulnerability
    from .cases import Case
    from .chemistry import Pair
    from .errors import ChokepointError
    from .focal import FocalSet
    from .lp import ConstraintFamily, Indexed, constraint_family
    from .network import Network, Stage


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'chokepoint' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name], __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])

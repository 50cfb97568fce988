"""Chokepoint: how exposed is the world's EV battery supply to a disruption in one country?

The vulnerability index of Cheng, Fuchs, Karplus & Michalek (Nature Communications 15, 2143,
2024) as an explicit Pyomo LP. Pipeline: statistics -> network -> LP -> index -> results.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what the names are; they are imported at first use (__getattr__)
    from .api import (RunResult, build_networks, load_network, load_networks, run,
                      vulnerability)
    from .cases import Case
    from .chemistry import Pair
    from .errors import ChokepointError
    from .focal import FocalSet
    from .lp import ConstraintFamily, constraint_family
    from .network import Network, Stage

#: Each public name and the module it comes from. Importing the package (or a light module
#: of it, such as a worker process's watchdog) loads none of them: a worker must be able to
#: start watching its parent before it spends seconds importing Pyomo and pandas.
_EXPORTS = {
    "RunResult": "api", "build_networks": "api", "load_network": "api",
    "load_networks": "api", "run": "api", "vulnerability": "api", "Case": "cases",
    "Pair": "chemistry", "ChokepointError": "errors", "FocalSet": "focal",
    "ConstraintFamily": "lp", "constraint_family": "lp", "Network": "network", "Stage": "network",
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'chokepoint' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = [
    "Case", "ChokepointError", "ConstraintFamily", "FocalSet", "Network", "Pair", "RunResult",
    "Stage", "constraint_family",
    "build_networks", "load_network", "load_networks", "run", "vulnerability",
]
__version__ = "0.1.0"

"""Chokepoint: how exposed is the world's EV battery supply to a disruption in one country?

The vulnerability index of Cheng, Fuchs, Karplus & Michalek (Nature Communications 15, 2143,
2024) as an explicit Pyomo LP. Pipeline: statistics -> network -> LP -> index -> results.
"""

from .api import RunResult, build_networks, load_network, load_networks, run, vulnerability
from .cases import Case
from .chemistry import Pair
from .errors import ChokepointError
from .focal import FocalSet
from .lp import ConstraintFamily, Indexed, constraint_family
from .network import Network, Stage

__all__ = [
    "Case", "ChokepointError", "ConstraintFamily", "FocalSet", "Indexed", "Network", "Pair",
    "RunResult",
    "Stage", "constraint_family",
    "build_networks", "load_network", "load_networks", "run", "vulnerability",
]
__version__ = "0.1.0"

"""The LP: its statement and the ways to solve it.

- :mod:`.symbols`: every set, parameter and variable, with title, description and unit;
- :mod:`.families`: the core rules (one function each, docstring = equation) and
  :func:`constraint_family`, the decorator for users' rules;
- :mod:`.extensions`: loading users' families from Python files or modules and from YAML;
- :mod:`.formulation`: the families of each case; :mod:`.model`: one compact Pyomo model per
  case formulation (imported only where Pyomo is needed);
- :mod:`.arrays`: a network as the vectors and sparse matrices the families are stated on;
- engines: :mod:`.highs` (default), :mod:`.flow` (``solver: network``), :mod:`.pyomo_engine`;
- :mod:`.solver`: :class:`VulnerabilityLP`, a network's LP in every case.
"""

from .families import CORE_FAMILIES, ConstraintFamily, Indexed, constraint_family
from .formulation import ExtensionError, Formulation, formulations
from .highs import SolveFailed
from .solver import DEFAULT_SOLVER, NETWORK_SOLVER, VulnerabilityLP, family_parameters
from .symbols import SYMBOLS, Symbol

#: HiGHS through Pyomo's persistent (appsi) interface.
APPSI_SOLVER = "appsi_highs"


def build_model(*args, **kwargs):
    """The Pyomo model of a formulation (see :func:`chokepoint.lp.model.build_model`)."""
    from .model import build_model as build

    return build(*args, **kwargs)


def known_solvers() -> list[str]:
    """Solver names Pyomo knows here, for suggestions (imports Pyomo)."""
    from .pyomo_engine import known_solvers as known

    return known()

__all__ = ["APPSI_SOLVER", "CORE_FAMILIES", "ConstraintFamily", "DEFAULT_SOLVER", "Indexed",
           "ExtensionError", "Formulation", "NETWORK_SOLVER", "SYMBOLS", "SolveFailed",
           "Symbol", "VulnerabilityLP", "build_model", "constraint_family",
           "family_parameters", "formulations", "known_solvers"]

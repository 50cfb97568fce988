"""The LP: its statement and the ways to solve it.

- :mod:`.symbols`: every set, parameter and variable, with title, description and unit;
- :mod:`.families`: the core rules (one function each, docstring = equation) and
  :func:`constraint_family`, the decorator for users' rules;
- :mod:`.extensions`: loading users' families from Python files or modules and from YAML;
- :mod:`.formulation`: one compact Pyomo model per case formulation;
- :mod:`.arrays`: a network as the vectors and sparse matrices the families are stated on;
- engines: :mod:`.highs` (default), :mod:`.flow` (``solver: network``), :mod:`.pyomo_engine`;
- :mod:`.solver`: :class:`VulnerabilityLP`, a network's LP in every case.
"""

from .families import CORE_FAMILIES, ConstraintFamily, constraint_family
from .formulation import ExtensionError, Formulation, build_model, formulations
from .highs import SolveFailed
from .pyomo_engine import APPSI_SOLVER, known_solvers
from .solver import DEFAULT_SOLVER, NETWORK_SOLVER, VulnerabilityLP, family_parameters
from .symbols import SYMBOLS, Symbol

__all__ = ["APPSI_SOLVER", "CORE_FAMILIES", "ConstraintFamily", "DEFAULT_SOLVER",
           "ExtensionError", "Formulation", "NETWORK_SOLVER", "SYMBOLS", "SolveFailed",
           "Symbol", "VulnerabilityLP", "build_model", "constraint_family",
           "family_parameters", "formulations", "known_solvers"]

"""Constraint families: the physical rules of the LP, each a function whose docstring's first
line is its equation, and the decorator users write their own rules with.

Core families (:data:`CORE_FAMILIES`) state Cheng et al.'s method on a network's arrays: a family
either bounds the case's variable (focal and clean origin are bounds on the touched flow, reset
for each focal set) or adds rows (one touched mass balance per interior node, one release row per
uncertain source, one share equation per observed interior node). Bounds and right-hand sides are
vectors of the query (focal set, product, case), so a new question is a vector update, never a
rebuild. The optimistic and pessimistic cases have touched flow ``x_a`` on every arc as variables
(layout ``flow``); the proportional case has the touched share ``s_n`` of every interior node
(layout ``share``) and touched flow is the expression ``x_a = v_a s_src(a)``.

User families (:func:`constraint_family`) are Pyomo rules over the same model; see the README's
extension guide for the contract.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ..cases import Case
from .arrays import NetworkArrays, Query

FLOW = "flow"  # x_a on every arc: optimistic, pessimistic A and B
SHARE = "share"  # s_n on every interior node: proportional
LAYOUT: dict[Case, str] = {Case.PROPORTIONAL: SHARE, Case.OPTIMISTIC: FLOW,
                           Case.PESSIMISTIC_A: FLOW, Case.PESSIMISTIC_B: FLOW}
ALL_CASES = frozenset(Case)
BOUND_CASES = frozenset({Case.OPTIMISTIC, Case.PESSIMISTIC_A, Case.PESSIMISTIC_B})
_INF = np.inf


def _doc_lines(fn) -> list[str]:
    return (inspect.getdoc(fn) or "").splitlines()


# -- what a core family states -------------------------------------------------------------


@dataclass(frozen=True)
class Bounds:
    """Bounds on the layout's variable, each a vector of the query (tonnes for x, 1 for s);
    ``None`` where the family sets none. The engines take the tightest over the families."""

    lower: Callable[[Query], np.ndarray] | None = None
    upper: Callable[[Query], np.ndarray] | None = None


@dataclass(frozen=True)
class Rows:
    """Rows ``lower(q) <= matrix @ var <= upper(q)`` over the layout's variable; ``labels``
    name the rows (the Pyomo index), ``None`` bounds are infinite."""

    matrix: sp.csr_matrix
    labels: list
    lower: Callable[[Query], np.ndarray] | None = None
    upper: Callable[[Query], np.ndarray] | None = None


@dataclass(frozen=True, eq=False)
class CoreFamily:
    """A rule of the method: its kind (``bounds``, ``rows`` or ``definition``), the layout and
    cases it belongs to, and ``build(arrays)`` giving its bounds or rows."""

    name: str
    title: str
    cases: frozenset[Case]
    layout: str
    kind: str
    build: Callable[[NetworkArrays], Bounds | Rows | None]
    optional: bool = False  # built only when asked for (band narrowing's pinned split)
    unit: str = "t"

    @property
    def equation(self) -> str:
        return _doc_lines(self.build)[0]

    @property
    def description(self) -> str:
        return " ".join(_doc_lines(self.build)[1:]).strip()

    user = False


#: The method's families, in the order they are stated.
CORE_FAMILIES: dict[str, CoreFamily] = {}


def _core(title: str, cases: Iterable[Case], layout: str, kind: str, optional: bool = False,
          unit: str = "t"):
    def register(build):
        if not inspect.getdoc(build):
            raise ValueError(f"core family {build.__name__} needs a docstring equation")
        CORE_FAMILIES[build.__name__] = CoreFamily(build.__name__, title, frozenset(cases),
                                                   layout, kind, build, optional, unit)
        return build

    return register


# -- optimistic and pessimistic cases: touched flow x_a on every arc -----------------------


@_core("Focal origin", BOUND_CASES, FLOW, "bounds")
def focal_origin(d: NetworkArrays) -> Bounds:
    r"""x_a \ge v_a f_{\mathrm{src}(a)} \quad \forall a \in A^{\mathrm{own}}
    Everything leaving a focal node is touched (with the capacity bound, x_a = v_a). A bound on
    x, reset for each focal set."""
    own, v, src = d.ownable_arc, d.tonnes, d.src
    return Bounds(lower=lambda q: np.where(own, v * q.focal[src], 0.0))


@_core("Clean origin of mines", BOUND_CASES, FLOW, "bounds")
def clean_origin(d: NetworkArrays) -> Bounds:
    r"""x_a \le v_a f_{\mathrm{src}(a)} \quad \forall a \in A^{\mathrm{mine}}
    Ore from a non-focal mine (or recycler) is untouched. A bound on x."""
    mine, v, src = d.mine_arc, d.tonnes, d.src
    return Bounds(upper=lambda q: np.where(mine, v * q.focal[src], _INF))


@_core("Clean origin of uncertain sources", {Case.OPTIMISTIC, Case.PESSIMISTIC_A}, FLOW,
       "bounds")
def clean_uncertain_origin(d: NetworkArrays) -> Bounds:
    r"""x_a \le 0 \quad \forall a \in A^{U}
    Material of unknown origin is untouched (optimistic and pessimistic A). A bound on x."""
    upper = np.where(d.uncertain_arc, 0.0, _INF)
    return Bounds(upper=lambda q: upper)


@_core("Touched mass balance", BOUND_CASES, FLOW, "rows")
def touched_mass_balance(d: NetworkArrays) -> Rows:
    r"""\min(0,\delta_n) \le \sum_{a \in \mathrm{out}(n)} x_a - \sum_{a \in \mathrm{in}(n)} x_a \le \max(0,\delta_n) + \bar{v}_n f_n \quad \forall n \in N^{\mathrm{int}}
    Touched material is conserved at every non-focal interior node, up to the node's own
    rounding imbalance in the data; a focal node's outflow is all touched whatever it
    receives. One row per interior node."""
    n = d.interior_idx
    low, high, out = np.minimum(0.0, d.imbalance), np.maximum(0.0, d.imbalance), d.outflow[n]
    return Rows(d.balance, list(d.names[n]), lower=lambda q: low,
                upper=lambda q: high + out * q.focal[n])


@_core("Uncertain-source release", {Case.PESSIMISTIC_B}, FLOW, "rows")
def uncertain_release(d: NetworkArrays) -> Rows:
    r"""\sum_{a \in \mathrm{out}(u)} x_a \le c_u = \min(\bar{v}_u, P_F) \quad \forall u \in U
    Pessimistic B: each uncertain source may carry touched material up to the focal set's own
    mine, refining and cathode output P_F (0 for a source held clean). One row per source."""
    u = d.uncertain_idx
    out, names = d.outflow[u], list(d.names[u])

    def upper(q: Query) -> np.ndarray:
        cap = np.minimum(out, d.release_cap(q.focal, q.product))
        if q.clean:
            cap = np.where([n in q.clean for n in names], 0.0, cap)
        return cap

    return Rows(d.release, names, upper=upper)


@_core("Pinned split", BOUND_CASES, FLOW, "rows", optional=True, unit="t^2")
def pinned_split(d: NetworkArrays) -> Rows:
    r"""v_b x_a - v_a x_b = 0 \quad \forall (a, b) \in Q, p_{\mathrm{src}(a)} = 1
    Band narrowing: a pinned interior node splits its touched outflow pro rata over its arcs,
    as proportional mixing does (rows of unpinned nodes are free). Built only for narrowing."""
    pairs = d.pin_pairs
    labels = [(d.names[n], d.names[d.tgt[a]], d.names[d.tgt[b]]) for a, b, n in pairs]
    node_names = np.asarray(d.names)[pairs[:, 2]] if len(pairs) else np.zeros(0, object)

    def bound(sign: float):
        def f(q: Query) -> np.ndarray:
            pinned = np.fromiter((n in q.pinned for n in node_names), bool, len(node_names))
            return np.where(pinned, 0.0, sign * _INF)
        return f

    return Rows(d.pin_matrix, labels, lower=bound(-1.0), upper=bound(1.0))


# -- proportional case: touched share s_n of every interior node ---------------------------


@_core("Focal share", {Case.PROPORTIONAL}, SHARE, "bounds", unit="-")
def focal_share(d: NetworkArrays) -> Bounds:
    r"""s_n \ge f_n \quad \forall n \in N^{\mathrm{int}}
    A focal interior node's throughput is all touched (focal origin in shares). A bound on s."""
    n = d.interior_idx
    return Bounds(lower=lambda q: q.focal[n])


@_core("Unobserved share", {Case.PROPORTIONAL}, SHARE, "bounds", unit="-")
def unobserved_share(d: NetworkArrays) -> Bounds:
    r"""s_n \le f_n \quad \forall n \in N^{\varnothing}
    A non-focal node fed only by uncertain sources has share 0. A bound on s."""
    n = d.interior_idx
    unobserved = d.observed_inflow[n] <= 0
    return Bounds(upper=lambda q: np.where(unobserved, q.focal[n], _INF))


@_core("Proportional share", {Case.PROPORTIONAL}, SHARE, "rows")
def proportional_share(d: NetworkArrays) -> Rows:
    r"""\sum_{a \in \mathrm{in}(n), \mathrm{src}(a) \in N^{\mathrm{mine}}} v_a f_{\mathrm{src}(a)} \le s_n \underline{v}_n - \sum_{a \in \mathrm{in}(n), \mathrm{src}(a) \in N^{\mathrm{int}}} v_a s_{\mathrm{src}(a)} \le \sum_{a \in \mathrm{in}(n), \mathrm{src}(a) \in N^{\mathrm{mine}}} v_a f_{\mathrm{src}(a)} + \underline{v}_n f_n \quad \forall n \in N^{\mathrm{obs}}
    A non-focal node's share is the touched fraction of its observed inflow: ore from a focal
    mine is touched, from another mine clean, from an interior node at that node's share (a
    focal node's row is slack: its share is 1). One row per observed interior node; the system
    is as large as the node count."""
    n = d.observed_idx
    primary, obs = d.primary_inflow, d.observed_inflow[n]

    def lower(q: Query) -> np.ndarray:
        return primary @ q.focal

    return Rows(d.share_matrix, list(d.names[n]), lower=lower,
                upper=lambda q: lower(q) + obs * q.focal[n])


@_core("Proportional mixing", {Case.PROPORTIONAL}, SHARE, "definition")
def proportional_mixing(d: NetworkArrays) -> None:
    r"""x_a = v_a s_{\mathrm{src}(a)} \quad \forall a \in A^{\mathrm{int}}, \qquad x_a = v_a f_{\mathrm{src}(a)} \quad \forall a \in A^{\mathrm{mine}}
    Every arc out of an interior node carries the node's touched share; a mine's arcs are
    touched exactly when it is focal. The definition of x in the proportional case (no rows)."""
    return None


@_core("Uncertain mixing", {Case.PROPORTIONAL}, SHARE, "definition")
def uncertain_mixing(d: NetworkArrays) -> None:
    r"""x_a = v_a s_{\mathrm{tgt}(a)} \quad \forall a \in A^{U}
    Material of unknown origin carries the touched share of the node it enters (no rows)."""
    return None


# -- user families ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Indexed:
    """A family parameter with one value per value of a selector (``by``: an owner, a stage,
    a node, ...), and a ``default`` for the values not listed (``None``: every one needed).
    Each entry is a parameter of its own, ``family.parameter.KEY``; the default is
    ``family.parameter``."""

    by: str
    values: Mapping[str, float]
    default: float | None = None


#: Names a user family cannot take: the model's own components and the core families.
def _reserved() -> set[str]:
    from .symbols import SYMBOLS

    out = set(SYMBOLS) | {"objective", "network", "owner", "stage", "material", "blocs",
                          "in_bloc"}
    for name in CORE_FAMILIES:
        out |= {name, f"{name}_index", f"{name}_lower", f"{name}_upper"}
    return out


def check_family_name(name: str, where: str) -> None:
    """A family name is an ASCII identifier that no core family or model component has."""
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise _name_error(where, f"a constraint family's name is an ASCII identifier (letters, "
                          f"digits, _), not {name!r}")
    if name in _reserved():
        raise _name_error(where, f"{name!r} is the name of a core family or a component of "
                          "the model; rename the family")


def _name_error(where: str, message: str):
    from ..errors import ScenarioError

    return ScenarioError(f"{where}: {message}")


def check_finite(value, where: str) -> float:
    """A user's number: a finite real (not a bool), or an error naming where it was given."""
    from ..errors import ChokepointError

    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ChokepointError(f"{where}: expected a number, got {value!r}")
    if not math.isfinite(value):
        raise ChokepointError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def component_names(family: "ConstraintFamily") -> list[str]:
    """The model components a family adds (Pyomo names): its Constraint, its rows' Set and
    one Param per parameter (an indexed parameter also its index and default)."""
    out = [family.name, f"{family.name}_index", f"{family.name}_rows"]
    for p, v in family.parameters.items():
        out.append(f"{family.name}_{p}")
        if isinstance(v, Indexed):
            out += [f"{family.name}_{p}_index", f"{family.name}_{p}_default"]
    return out


def check_families(families: Iterable["ConstraintFamily"]) -> None:
    """Names that collide (families, parameters' components, core names) are errors."""
    from ..errors import ChokepointError

    owner: dict[str, str] = {n: "the core model" for n in _reserved()}
    for f in families:
        for comp in component_names(f):
            key = comp.lower()
            if key in owner and owner[key] != f.name:
                raise ChokepointError(
                    f"constraint family {f.name} ({f.source}): its component {comp!r} collides "
                    f"with {owner[key] if owner[key] == 'the core model' else 'family ' + owner[key]}"
                    "; rename the family or the parameter")
            owner[key] = f.name


def flat_parameters(family: "ConstraintFamily") -> dict[str, float]:
    """Each of a family's parameters as ``parameter -> default`` and, for an indexed one,
    ``parameter.KEY -> value`` (its default as ``parameter``, where it has one)."""
    out: dict[str, float] = {}
    for p, v in family.parameters.items():
        if isinstance(v, Indexed):
            if v.default is not None:
                out[p] = float(v.default)
            out.update({f"{p}.{k}": float(x) for k, x in v.values.items()})
        else:
            out[p] = float(v)
    return out


class IndexedParameter:
    """An indexed parameter in a model: ``p[key]`` is the entry for a selector's value (owners
    match by country), else the default; each entry is a mutable Pyomo Param."""

    def __init__(self, name: str, spec: Indexed, entries, default):
        self.name, self.by, self.entries, self.default = name, spec.by, entries, default
        if spec.by.endswith("owner"):
            from .. import countries

            self._key = countries.key
        else:
            self._key = str
        self._lookup = {self._key(k): k for k in spec.values}

    def __getitem__(self, value):
        key = self._lookup.get(self._key(value))
        if key is not None:
            return self.entries[key]
        if self.default is None:
            raise _extension_error(f"parameter {self.name}: no value for {value!r} and no "
                                 "default")
        return self.default


def _extension_error(message: str):
    from .formulation import ExtensionError

    return ExtensionError(message)


def parameter_text(family: "ConstraintFamily", values: Mapping[str, float] | None = None,
                   fmt: str = "{p}={v:g}") -> str:
    """``p=value, cap=1, cap.Korea=0.5``: the family's parameters at ``values`` (keys
    ``family.parameter``), else their defaults."""
    return ", ".join(fmt.format(p=p, v=(values or {}).get(f"{family.name}.{p}", v))
                     for p, v in flat_parameters(family).items())


@dataclass(frozen=True, eq=False)
class ConstraintFamily:
    """A user's rule: ``rule(m, **parameters)`` returns a Pyomo ``Constraint`` over the case's
    model ``m``; built into the models of ``cases`` only. ``parameters`` maps each declared
    parameter to its default (a number, or :class:`Indexed`); the rule receives each as a
    mutable Pyomo Param (an indexed one as a mapping from the selector's values to Params)."""

    name: str
    title: str
    cases: frozenset[Case]
    rule: Callable
    parameters: Mapping[str, float | Indexed] = field(default_factory=dict)
    unit: str = "t"
    source: str = ""  # the file, module or scenario key that defines it
    text: str | None = None  # equation and description when not a docstring (YAML families)
    declared: object = None  # a YAML family's selection and rows (yaml_families.YamlFamily)
    allow_empty: bool = False

    user = True
    kind = "rows"

    def count_rows(self, network) -> int | None:
        """Rows the family states in a network, where known before building (YAML)."""
        return None if self.declared is None else self.declared.count_rows(network)

    def _lines(self) -> list[str]:
        return (self.text or inspect.getdoc(self.rule) or "").splitlines()

    @property
    def equation(self) -> str:
        return self._lines()[0]

    @property
    def description(self) -> str:
        return " ".join(self._lines()[1:]).strip()

    @property
    def layouts(self) -> set[str]:
        return {LAYOUT[c] for c in self.cases}

    def describe(self, values: Mapping[str, float] | None = None) -> dict:
        """Name, title, equation, cases, parameter values (from ``family.parameter -> value``,
        else the defaults) and source, for results' metadata."""
        values = {p: float((values or {}).get(f"{self.name}.{p}", v)) for p, v in
                  flat_parameters(self).items()}
        return {"name": self.name, "title": self.title, "equation": self.equation,
                "description": self.description,
                "cases": [c.value for c in Case if c in self.cases],
                "parameters": values,
                "indexed_by": {p: v.by for p, v in self.parameters.items()
                               if isinstance(v, Indexed)},
                "source": self.source}


def parse_cases(cases: Iterable[Case | str], where: str) -> frozenset[Case]:
    out = frozenset(c if isinstance(c, Case) else Case.parse(c, where) for c in cases)
    if not out:
        raise ValueError(f"{where}: a family applies in at least one case")
    return out


def constraint_family(title: str, cases: Iterable[Case | str] = BOUND_CASES,
                      parameters: Mapping[str, float | Indexed] | None = None, unit: str = "t",
                      name: str | None = None, allow_empty: bool = False):
    """Declare a user constraint family (decorator). The function's docstring starts with its
    equation (LaTeX); it takes the case's model and one keyword per declared parameter, and
    returns a Pyomo ``Constraint``. The decorated name becomes a :class:`ConstraintFamily`, which
    ``chokepoint.vulnerability(..., families=[...])`` or a scenario's ``extensions:`` applies.

    ``cases`` default to the three bounds: in the proportional case every touched flow is fixed
    by the share equations (a determined system), so a further row there almost always makes
    the LP infeasible; name ``proportional`` to include it on purpose. A parameter is a number
    or :class:`Indexed` (a value per owner, stage, ...). A family that states no row in any
    network of a run is an error unless ``allow_empty``.
    """
    parameters = dict(parameters or {})

    def register(rule: Callable) -> ConstraintFamily:
        family = name or rule.__name__
        if not inspect.getdoc(rule):
            raise ValueError(f"constraint family {family}: the docstring's first line must be "
                             "its equation")
        declared = list(inspect.signature(rule).parameters)[1:]
        if set(declared) != set(parameters):
            raise ValueError(f"constraint family {family}: the rule takes {declared} after the "
                             f"model but declares parameters {list(parameters)}")
        from ..errors import ChokepointError

        clean: dict[str, float | Indexed] = {}
        try:
            check_family_name(family, f"constraint family {family}")
            for p, v in parameters.items():
                here = f"constraint family {family}: parameter {p}"
                if isinstance(v, Indexed):
                    values = {str(k): check_finite(x, f"{here}[{k!r}]")
                              for k, x in v.values.items()}
                    default = None if v.default is None else check_finite(v.default, here)
                    clean[p] = Indexed(v.by, values, default)
                else:
                    clean[p] = check_finite(v, here)
        except ChokepointError as e:  # a mistake in the definition, raised where it is made
            raise ValueError(str(e)) from None
        source = inspect.getsourcefile(rule) or rule.__module__
        return ConstraintFamily(family, title, parse_cases(cases, f"family {family}"), rule,
                                clean, unit, f"{rule.__module__}:{source}",
                                allow_empty=allow_empty)

    return register

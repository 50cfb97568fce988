"""One compact Pyomo model per case formulation: the statement of the LP.

The sets, parameters and variables of :data:`SYMBOLS`; each core family's rows as a
``Constraint`` named after the family (bounds and right-hand sides as mutable Params
``<family>_lower`` / ``<family>_upper``, which the engines set for each query); bound families as
variable bounds; the users' families built by their own rules. ``chokepoint math`` prints it,
any Pyomo solver can solve it, and users' rules extend it. Only the paths that need Pyomo import
this module (users' families, Pyomo solvers, the math), so the default path starts faster.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextlib import contextmanager

import numpy as np
import pyomo.environ as pyo
from pyomo.core.expr.numeric_expr import LinearExpression

from .. import countries
from ..errors import ChokepointError
from ..focal import bloc_countries
from .arrays import NetworkArrays
from .families import FLOW, ConstraintFamily, CoreFamily, Indexed, IndexedParameter, Rows
from .formulation import ExtensionError, Formulation
from .symbols import SYMBOLS


def build_model(d: NetworkArrays, formulation: Formulation,
                parameters: Mapping[str, float] | None = None,
                core_rows: bool = True,
                blocs: Mapping[str, Mapping] | None = None) -> pyo.ConcreteModel:
    """The formulation's Pyomo model. ``core_rows=False`` leaves out the core families' rows
    (the HiGHS engine builds those from arrays and needs the model only for users' rules).

    What users' rules read besides the sets, parameters and variables: ``m.owner[n]`` and
    ``m.stage[n]`` (a node's owner and stage name), ``m.material``, an arc's ends as the arc
    itself (``for s, t in m.arcs``), ``m.blocs`` (bloc name -> the members' country keys) and
    ``m.in_bloc(owner, bloc)``."""
    net = d.network
    m = pyo.ConcreteModel(name=f"chokepoint {net.material} {net.year or ''} "
                               f"[{formulation.name}]".replace("  ", " "))
    m.network = net
    m.material = net.material
    m.blocs = {name: frozenset(countries.key(c) for c in bloc_countries(body))
               for name, body in (blocs or {}).items()}
    m.in_bloc = lambda owner, bloc: countries.key(owner) in m.blocs[bloc]
    names = list(d.names)
    arcs = d.arc_labels
    interior = [names[i] for i in d.interior_idx]
    m.nodes = pyo.Set(initialize=names, ordered=True)
    m.arcs = pyo.Set(initialize=arcs, dimen=2, ordered=True)
    m.interior = pyo.Set(initialize=interior, ordered=True)
    m.ownable_arcs = pyo.Set(initialize=[arcs[i] for i in np.flatnonzero(d.ownable_arc)],
                             dimen=2, ordered=True)
    m.mine_arcs = pyo.Set(initialize=[arcs[i] for i in np.flatnonzero(d.mine_arc)], dimen=2,
                          ordered=True)
    m.uncertain_sources = pyo.Set(initialize=[names[i] for i in d.uncertain_idx], ordered=True)
    m.uncertain_arcs = pyo.Set(initialize=[arcs[i] for i in np.flatnonzero(d.uncertain_arc)],
                               dimen=2, ordered=True)
    m.product_arcs = pyo.Set(initialize=[arcs[i] for i in np.flatnonzero(d.product_arc)],
                             dimen=2, ordered=True)
    m.observed_interior = pyo.Set(initialize=[names[i] for i in d.observed_idx], ordered=True)
    m.unobserved_interior = pyo.Set(initialize=[names[i] for i in d.unobserved_idx],
                                    ordered=True)

    m.tonnes = pyo.Param(m.arcs, initialize=dict(zip(arcs, d.tonnes.tolist())),
                         within=pyo.NonNegativeReals)
    m.outflow = pyo.Param(m.nodes, initialize=dict(zip(names, d.outflow.tolist())))
    m.inflow = pyo.Param(m.nodes, initialize=dict(zip(names, d.inflow.tolist())))
    m.observed_inflow = pyo.Param(
        m.interior, initialize=dict(zip(interior, d.observed_inflow[d.interior_idx].tolist())))
    m.imbalance = pyo.Param(m.interior, initialize=dict(zip(interior, d.imbalance.tolist())))
    m.owner = pyo.Param(m.nodes, initialize=dict(zip(names, net.nodes["owner"].reindex(names)
                                                      .astype(str).tolist())), within=pyo.Any)
    m.stage = pyo.Param(m.nodes, initialize={n: s.value for n, s in
                                             zip(names, net.nodes["stage"].reindex(names))},
                        within=pyo.Any)
    m.focal = pyo.Param(m.nodes, initialize=0.0, mutable=True, within=pyo.UnitInterval)
    m.weight = pyo.Param(m.product_arcs, initialize=0.0, mutable=True)
    if formulation.layout == FLOW:
        m.release_cap = pyo.Param(m.uncertain_sources, initialize=0.0, mutable=True)
        m.touched = pyo.Var(m.arcs, bounds=(0.0, None))
        columns = list(m.touched.values())
        if any(f.name == "pinned_split" for f in formulation.core):
            m.pinned = pyo.Param(m.interior, initialize=0.0, mutable=True, within=pyo.Binary)
    else:
        m.share = pyo.Var(m.interior, bounds=(0.0, 1.0))
        columns = list(m.share.values())
        m.touched = pyo.Expression(m.arcs, rule=_proportional_touched(d, m))
    m.objective = pyo.Objective(
        expr=sum(m.weight[a] * m.touched[a] for a in m.product_arcs), sense=pyo.minimize)
    for c in m.component_objects((pyo.Set, pyo.Param, pyo.Var, pyo.Expression),
                                 descend_into=False):
        if c.local_name in SYMBOLS:
            c.doc = SYMBOLS[c.local_name].title
    if core_rows:
        for fam in formulation.core:
            if fam.kind == "rows":
                _add_rows(m, fam, fam.build(d), columns)
    values = dict(parameters or {})
    for fam in formulation.user:
        add_user_family(m, fam, values)
    return m


def _proportional_touched(d: NetworkArrays, m):
    """x_a = v_a s_src(a) out of interior nodes, v_a f_src(a) out of mines, v_a s_tgt(a) out
    of uncertain sources (proportional_mixing, uncertain_mixing)."""
    stage_of = dict(zip(d.names, range(d.n_nodes)))

    def rule(m, s, t):
        i = stage_of[s]
        if d.interior[i]:
            return m.tonnes[s, t] * m.share[s]
        if d.uncertain[i]:
            return m.tonnes[s, t] * m.share[t]
        return m.tonnes[s, t] * m.focal[s]

    return rule


def _add_rows(m, fam: CoreFamily, rows: Rows, columns: list) -> None:
    """A core family's rows as a Constraint over ``rows.labels``, bounded by mutable Params."""
    labels = rows.labels
    dimen = len(labels[0]) if labels and isinstance(labels[0], tuple) else 1
    index = pyo.Set(initialize=labels, dimen=dimen, ordered=True)
    m.add_component(f"{fam.name}_index", index)
    index.doc = f"Rows of {fam.name}"
    lower = upper = None
    if rows.lower is not None:
        lower = pyo.Param(index, initialize=0.0, mutable=True)
        m.add_component(f"{fam.name}_lower", lower)
        lower.doc = f"Lower bound of {fam.name} (set for each query)"
    if rows.upper is not None:
        upper = pyo.Param(index, initialize=0.0, mutable=True)
        m.add_component(f"{fam.name}_upper", upper)
        upper.doc = f"Upper bound of {fam.name} (set for each query)"
    a = rows.matrix.tocsr()
    pos = {label: i for i, label in enumerate(labels)}

    def rule(m, *label):
        label = label[0] if dimen == 1 else label
        i = pos[label]
        lo, hi = a.indptr[i], a.indptr[i + 1]
        body = LinearExpression(constant=0.0, linear_coefs=a.data[lo:hi].tolist(),
                                linear_vars=[columns[j] for j in a.indices[lo:hi]])
        return (None if lower is None else lower[label], body,
                None if upper is None else upper[label])

    con = pyo.Constraint(index, rule=rule)
    m.add_component(fam.name, con)
    con.doc = f"{fam.title}: {fam.equation}"


def family_parameter(family: str, parameter: str) -> str:
    """The model component holding a user family's parameter."""
    return f"{family}_{parameter}"


def add_user_family(m, fam: ConstraintFamily, values: Mapping[str, float]) -> None:
    """Build a user family into ``m``: its parameters as mutable Params (an indexed one as a
    Param over its keys and a scalar default), then its rule."""
    params = {}
    for p, declared in fam.parameters.items():
        name = family_parameter(fam.name, p)
        if isinstance(declared, Indexed):
            keys = list(declared.values)
            comp = pyo.Param(keys, initialize={k: float(values.get(
                f"{fam.name}.{p}.{k}", v)) for k, v in declared.values.items()}, mutable=True)
            m.add_component(name, comp)
            comp.doc = f"Parameter {p} of the user family {fam.name}, by {declared.by}"
            default = None
            if declared.default is not None:
                default = pyo.Param(initialize=float(values.get(f"{fam.name}.{p}",
                                                                declared.default)), mutable=True)
                m.add_component(f"{name}_default", default)
                default.doc = f"Parameter {p} of the user family {fam.name}, where not listed"
            params[p] = IndexedParameter(f"{fam.name}.{p}", declared, comp, default)
            continue
        comp = pyo.Param(initialize=float(values.get(f"{fam.name}.{p}", declared)),
                         mutable=True)
        m.add_component(name, comp)
        comp.doc = f"Parameter {p} of the user family {fam.name}"
        params[p] = comp
    if m.component(fam.name) is not None:
        raise ExtensionError(f"constraint family {fam.name} ({fam.source}): the model already "
                             f"has a component named {fam.name!r}; rename the family")
    try:
        with _quiet_pyomo():
            con = fam.rule(m, **params)
            if not isinstance(con, pyo.Constraint):
                raise ExtensionError(f"constraint family {fam.name} ({fam.source}) must return "
                                     f"a pyomo Constraint, not {type(con).__name__}")
            m.add_component(fam.name, con)
    except ChokepointError:
        raise
    except Exception as e:  # the user's code: name it and say what it raised
        raise ExtensionError(f"constraint family {fam.name} ({fam.source}) failed to build: "
                             f"{type(e).__name__}: {e}") from None
    except SystemExit as e:  # sys.exit in a rule would end the run without a word
        raise ExtensionError(f"constraint family {fam.name} ({fam.source}) called sys.exit"
                             f"({e.code!r}) while building; a rule returns a Constraint, it "
                             "may not end the run") from None
    con.doc = f"{fam.title}: {fam.equation}"


def set_family_parameters(m, fam: ConstraintFamily, values: Mapping[str, float]) -> None:
    """Set a built family's parameters to ``values`` (``family.parameter[.KEY] -> value``;
    defaults where a key is absent)."""
    for p, declared in fam.parameters.items():
        name = family_parameter(fam.name, p)
        if isinstance(declared, Indexed):
            comp = m.component(name)
            for k, v in declared.values.items():
                comp[k].set_value(float(values.get(f"{fam.name}.{p}.{k}", v)))
            if declared.default is not None:
                m.component(f"{name}_default").set_value(
                    float(values.get(f"{fam.name}.{p}", declared.default)))
        else:
            m.component(name).set_value(float(values.get(f"{fam.name}.{p}", declared)))


@contextmanager
def _quiet_pyomo():
    """Pyomo logs a failing rule before raising; the error is reported once, by us."""
    log = logging.getLogger("pyomo.core")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)

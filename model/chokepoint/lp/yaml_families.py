"""Constraint families declared in a scenario's YAML: the language, its checks, and its rows.

A family selects *members* (``foreach: arcs`` or ``nodes``) with ``where``, optionally groups
them (``group_by``), and states one or more linear ``equation``\\ s per member or per group::

    per_owner:
      title: Cathode intake per owner
      foreach: arcs
      group_by: [target_owner]            # a row per owner; [] = one row in total
      where: target_stage == cathode_pool and tonnes > 1000
      equation: sum(touched) <= cap * sum(tonnes)
      parameters:
        cap: {by: target_owner, values: {Korea: 0.5, Japan: 0.4}, default: 1.0}

- **Selectors** (``where``, ``group_by``, an indexed parameter's ``by``): for arcs
  :data:`ARC_SELECTORS`, for nodes :data:`NODE_SELECTORS`. Owners match by country (``Korea`` is
  ``Korea, Republic of``); a stage name means exactly that node stage (``refining`` is not
  ``refining_pool``); ``*focal_stage`` groups the stages a focal set names (``refining`` is the
  refiners and their pools). ``bloc(NAME)`` stands for the countries of a bloc of the
  scenario's blocs file, with ``in`` / ``not in``.
- **Data conditions**: ``< <= > >= == !=`` of a data term (:data:`ARC_DATA`, :data:`NODE_DATA`)
  with a number, e.g. ``tonnes > 1000``.
- **Equations**: ``LHS <= RHS`` (or ``>=``, ``==``) of numbers, parameters, named
  ``expressions`` and the member terms (:data:`ARC_TERMS`, :data:`NODE_TERMS`) with ``+ - * /``
  and parentheses; with ``group_by``, member terms stand only inside ``sum(...)``. A product of
  two touched terms, or a division by one, is refused (the LP stays linear).

Every mistake is an error before any solve: an unknown name (with a suggestion), a value that
names nothing in the run's networks (:meth:`YamlFamily.check`), a family that selects no row in
any network (unless ``allow_empty``), terms that cancel, a divisor that is zero, a NaN. Nothing
is ``eval``-ed: pyparsing parses, and the tree is walked.
"""

from __future__ import annotations

import csv
import io
import math
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Union

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError

from .. import countries
from ..cases import Case
from ..errors import ScenarioError, did_you_mean, read_text
from ..focal import bloc_countries
from ..network import FOCAL_STAGES, Stage
from .families import (BOUND_CASES, ConstraintFamily, Indexed, IndexedParameter,
                       check_family_name, parse_cases)
from .formulation import ExtensionError

# -- the vocabulary --------------------------------------------------------------------------

#: Selectors of an arc: its ends, their owners and stages, the stage a focal set names, material.
ARC_SELECTORS = ("source", "target", "source_owner", "target_owner", "source_stage",
                 "target_stage", "source_focal_stage", "target_focal_stage", "material")
#: Selectors of a node.
NODE_SELECTORS = ("node", "owner", "stage", "focal_stage", "material")
#: Data of an arc (tonnes of contained element): usable in ``where`` and in equations.
ARC_DATA = {"tonnes": r"v_a", "outflow_source": r"\bar{v}_{\mathrm{src}(a)}",
            "inflow_target": r"\hat{v}_{\mathrm{tgt}(a)}"}
NODE_DATA = {"inflow": r"\hat{v}_n", "outflow": r"\bar{v}_n"}
#: Every term of an equation, with its LaTeX symbol.
ARC_TERMS = {"touched": r"x_a", **ARC_DATA, "focal_source": r"f_{\mathrm{src}(a)}",
             "focal_target": r"f_{\mathrm{tgt}(a)}"}
NODE_TERMS = {"touched_in": r"\sum_{a \in \mathrm{in}(n)} x_a",
              "touched_out": r"\sum_{a \in \mathrm{out}(n)} x_a", **NODE_DATA, "focal": r"f_n"}
VARIABLES = frozenset({"touched", "touched_in", "touched_out"})
FOCAL_TERMS = frozenset({"focal", "focal_source", "focal_target"})
#: Words of the language itself: no parameter or expression takes them as a name.
KEYWORDS = frozenset({"sum", "bloc", "and", "or", "not", "in"})
MAX_TEXT = 4_000  # characters of one where, equation or expression
MAX_DEPTH = 24  # nested parentheses


def selectors(foreach: str) -> tuple[str, ...]:
    return ARC_SELECTORS if foreach == "arcs" else NODE_SELECTORS


def terms(foreach: str) -> dict[str, str]:
    return ARC_TERMS if foreach == "arcs" else NODE_TERMS


def data_terms(foreach: str) -> dict[str, str]:
    return ARC_DATA if foreach == "arcs" else NODE_DATA


# -- the schema ------------------------------------------------------------------------------


class IndexedSpec(BaseModel):
    """A parameter with a value per selector value: inline ``values`` or a CSV ``file``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    by: str = Field(description="The selector whose value picks the entry, e.g. target_owner.")
    values: dict[str, float] = Field({}, description="Selector value -> parameter value.")
    file: str | None = Field(None, description="A CSV of key,value rows, relative to the "
                             "scenario (instead of values, or completing them).")
    default: float | None = Field(None, description="The value where no entry is given "
                                  "(without it, every selected key needs an entry).")


#: A parameter is a number or an indexed mapping; pydantic tells them apart by shape (the tags
#: name the branch in its error locations, and error messages leave them out).
PARAMETER_TAGS = ("number", "indexed")
Parameter = Annotated[Union[Annotated[float, Tag("number")], Annotated[IndexedSpec, Tag("indexed")]],
                      Discriminator(lambda v: "indexed" if isinstance(v, (dict, IndexedSpec))
                                    else "number")]


class EquationSpec(BaseModel):
    """One of several equations of a family, with its own selection."""

    model_config = ConfigDict(extra="forbid")
    where: str = Field("", description="Selection, combined with the family's by `and`.")
    equation: str = Field(description="`LHS <= RHS`, `>=` or `==`.")


class ConstraintSpec(BaseModel):
    """A declarative constraint family (see :mod:`chokepoint.lp.yaml_families`)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    title: str = Field(description="What the rule states, in a few words.")
    description: str = Field("", description="More words, copied into the math and results.")
    cases: list[str] = Field([c.value for c in Case if c in BOUND_CASES], min_length=1,
                             description="Cases whose models get the rows (default: the three "
                             "bounds; the proportional case only when named).")
    foreach: str = Field(description="`arcs` or `nodes`: the members rows are stated over.")
    group_by: list[str] | None = Field(None, description="Selectors: a row per distinct value "
                                       "among the selected members ([] = one row in total); "
                                       "absent = a row per member.")
    where: str = Field("", description="Selection of members; empty selects all.")
    equation: str | None = Field(None, description="`LHS <= RHS`, `>=` or `==`; linear in "
                                 "touched flow.")
    equations: list[EquationSpec] | None = Field(None, description="Several equations, each "
                                                 "with its own `where` (instead of equation).")
    expressions: dict[str, str] = Field({}, description="Named sub-expressions used in the "
                                        "equations.")
    parameters: dict[str, Parameter] = Field(
        {}, description="Declared parameters: name -> default, or an indexed parameter "
        "{by, values | file, default}.")
    allow_empty: bool = Field(False, description="Accept a family that selects no row in any "
                              "network of the run.")


# -- the parse tree --------------------------------------------------------------------------


@dataclass(frozen=True)
class Expr:
    """A node of an equation: ``num``, ``name``, ``sum``, ``neg``, ``+ - * /``."""

    kind: str
    value: object = None
    args: tuple = ()


@dataclass(frozen=True)
class Bloc:
    name: str


@dataclass(frozen=True)
class Cond:
    """``selector op values`` of a where."""

    name: str
    op: str  # == != < <= > >= in "not in"
    values: tuple


@dataclass(frozen=True)
class Logic:
    op: str  # and or not
    args: tuple


def _fold_binary(tokens):
    t = list(tokens[0])
    out = t[0]
    for op, x in zip(t[1::2], t[2::2]):
        out = Expr(op, args=(out, x))
    return out


def _fold_logic(tokens):
    t = list(tokens[0])
    if t[0] == "not":
        return Logic("not", (t[1],))
    return Logic(t[1], tuple(t[0::2]))


@lru_cache(maxsize=1)
def _grammar():
    import pyparsing as pp  # only where a scenario declares constraints

    pp.ParserElement.enable_packrat()
    name = pp.Word(pp.alphas + "_", pp.alphanums + "_")
    number = pp.Regex(r"(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?").set_parse_action(
        lambda t: Expr("num", float(t[0])))
    arith = pp.Forward()
    total = (pp.Keyword("sum") + pp.Suppress("(") + arith + pp.Suppress(")")).set_parse_action(
        lambda t: Expr("sum", args=(t[1],)))
    operand = number | total | name.copy().set_parse_action(lambda t: Expr("name", t[0]))
    arith <<= pp.infix_notation(operand, [
        (pp.Literal("-"), 1, pp.OpAssoc.RIGHT, lambda t: Expr("neg", args=(t[0][1],))),
        (pp.one_of("* /"), 2, pp.OpAssoc.LEFT, _fold_binary),
        (pp.one_of("+ -"), 2, pp.OpAssoc.LEFT, _fold_binary),
    ])
    equation = arith("lhs") + pp.one_of("<= >= ==")("sense") + arith("rhs")

    quoted = pp.QuotedString('"') | pp.QuotedString("'")
    word = quoted | pp.Word(pp.alphanums + "_.-+")
    bloc = (pp.Keyword("bloc") + pp.Suppress("(") + (quoted | pp.Word(pp.alphanums + "_.-"))
            + pp.Suppress(")")).set_parse_action(lambda t: Bloc(t[1]))
    item = bloc | word
    listed = pp.Suppress("[") + pp.Group(pp.DelimitedList(item)) + pp.Suppress("]")
    member_of = pp.Group(pp.Keyword("not") + pp.Keyword("in")).set_parse_action(
        lambda t: "not in") | pp.Keyword("in")
    compare = (name + (pp.one_of("== != <= >= < >") + item
                       | member_of + (listed | bloc))).set_parse_action(
        lambda t: Cond(t[0], t[1], tuple(t[2]) if isinstance(t[2], pp.ParseResults)
                       else (t[2],)))
    where = pp.infix_notation(compare, [
        (pp.Keyword("not"), 1, pp.OpAssoc.RIGHT, _fold_logic),
        (pp.Keyword("and"), 2, pp.OpAssoc.LEFT, _fold_logic),
        (pp.Keyword("or"), 2, pp.OpAssoc.LEFT, _fold_logic),
    ])
    return (equation + pp.StringEnd(), arith + pp.StringEnd(), where + pp.StringEnd())


def _parse(which: int, text: str, at: str, what: str):
    """Parse ``text`` (an equation, an expression or a selection), bounded in size and depth."""
    if len(text) > MAX_TEXT:
        raise ScenarioError(f"{at}: the {what} is {len(text):,} characters long; at most "
                            f"{MAX_TEXT:,}")
    depth = deepest = 0
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        deepest = max(deepest, depth)
    if deepest > MAX_DEPTH:
        raise ScenarioError(f"{at}: the {what} nests parentheses {deepest} deep; at most "
                            f"{MAX_DEPTH} (name a part in `expressions:`)")
    import pyparsing as pp

    try:
        return _grammar()[which].parse_string(text, parse_all=True)
    except pp.ParseBaseException as e:
        raise ScenarioError(f"{at}: cannot parse the {what} at column {e.col}: {text!r}") from None
    except RecursionError:
        raise ScenarioError(f"{at}: the {what} is nested too deeply") from None


# -- members: the fields a selection reads ---------------------------------------------------


def _focal_stage(stage: Stage) -> str:
    return next((k for k, v in FOCAL_STAGES.items() if stage in v), "")


def member_fields(network, foreach: str) -> pd.DataFrame:
    """One row per arc (index: source, target) or node (index: name) with every selector and
    data term; owners also as country keys (``*_owner_key``). Kept with the network."""
    cache_key = f"yaml_fields_{foreach}"
    got = network._cache.get(cache_key)
    if got is not None:
        return got
    nodes, arcs = network.nodes, network.arcs
    stage = nodes["stage"].map(lambda s: s.value)
    focal_stage = nodes["stage"].map(_focal_stage)
    owner = nodes["owner"].astype(str)
    owner_key = owner.map({o: countries.key(o) for o in pd.unique(owner)})
    tonnes = arcs["tonnes"].to_numpy(float)
    outflow = pd.Series(tonnes, index=arcs["source"]).groupby(level=0).sum()
    inflow = pd.Series(tonnes, index=arcs["target"]).groupby(level=0).sum()
    if foreach == "arcs":
        s, t = arcs["source"], arcs["target"]
        out = pd.DataFrame({
            "source": s.to_numpy(), "target": t.to_numpy(),
            "source_owner": owner.reindex(s).to_numpy(),
            "target_owner": owner.reindex(t).to_numpy(),
            "source_owner_key": owner_key.reindex(s).to_numpy(),
            "target_owner_key": owner_key.reindex(t).to_numpy(),
            "source_stage": stage.reindex(s).to_numpy(),
            "target_stage": stage.reindex(t).to_numpy(),
            "source_focal_stage": focal_stage.reindex(s).to_numpy(),
            "target_focal_stage": focal_stage.reindex(t).to_numpy(),
            "material": network.material,
            "tonnes": tonnes,
            "outflow_source": outflow.reindex(s).fillna(0.0).to_numpy(),
            "inflow_target": inflow.reindex(t).fillna(0.0).to_numpy(),
        })
    else:
        out = pd.DataFrame({
            "node": nodes.index.to_numpy(), "owner": owner.to_numpy(),
            "owner_key": owner_key.to_numpy(), "stage": stage.to_numpy(),
            "focal_stage": focal_stage.to_numpy(), "material": network.material,
            "inflow": inflow.reindex(nodes.index).fillna(0.0).to_numpy(),
            "outflow": outflow.reindex(nodes.index).fillna(0.0).to_numpy(),
        })
    network._cache[cache_key] = out
    return out


def _kind(selector: str) -> str:
    """What a selector's values name: node, owner, stage, focal_stage or material."""
    if selector.endswith("focal_stage"):
        return "focal_stage"
    for kind in ("owner", "stage", "material"):
        if selector.endswith(kind):
            return kind
    return "node"


STAGES = tuple(s.value for s in Stage)


@dataclass(frozen=True)
class Literal:
    """A value the family names, checked against the run's networks: where it was written."""

    kind: str
    value: str
    at: str


def _static_check(kind: str, value: str, at: str) -> None:
    """Values whose vocabulary is fixed (stages, focal stages, materials) are checked at once."""
    from ..chemistry import MATERIALS

    choices = {"stage": STAGES, "focal_stage": tuple(FOCAL_STAGES),
               "material": tuple(MATERIALS)}.get(kind)
    if choices is not None and value not in choices:
        hint = " (the refiners and their pools together: *focal_stage == refining)" \
            if kind == "stage" and value in FOCAL_STAGES else ""
        raise ScenarioError(f"{at}: unknown {kind.replace('_', ' ')} {value!r}"
                            f"{did_you_mean(value, list(choices))}{hint}; choose from "
                            f"{', '.join(choices)}")


# -- selection -------------------------------------------------------------------------------


Mask = Callable[[pd.DataFrame], np.ndarray]


def _compile_where(tree, foreach: str, at: str, blocs: Mapping[str, dict],
                   literals: list[Literal]) -> Mask:
    sels, data = selectors(foreach), data_terms(foreach)

    def compile_(node) -> Mask:
        if isinstance(node, Logic):
            parts = [compile_(x) for x in node.args]
            if node.op == "not":
                return lambda df: ~parts[0](df)
            if node.op == "and":
                return lambda df: np.logical_and.reduce([p(df) for p in parts])
            return lambda df: np.logical_or.reduce([p(df) for p in parts])
        name, op, values = node.name, node.op, node.values
        if name in data:
            if op in ("in", "not in") or len(values) != 1 or isinstance(values[0], Bloc):
                raise ScenarioError(f"{at}: {name} is a quantity (t): compare it with a number "
                                    "by < <= > >= == !=")
            try:
                number = float(values[0])
            except ValueError:
                raise ScenarioError(f"{at}: {name} {op} {values[0]!r}: {values[0]!r} is not a "
                                    "number") from None
            if not math.isfinite(number):
                raise ScenarioError(f"{at}: {name} {op} {values[0]}: give a finite number")
            cmp = {"==": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal,
                   ">": np.greater, ">=": np.greater_equal}[op]
            return lambda df: cmp(df[name].to_numpy(float), number)
        if name not in sels:
            other = terms(foreach)
            why = ("is a variable: a selection reads data" if name in VARIABLES else
                   "depends on the focal set: use it in the equation" if name in other else
                   f"is no selector of {foreach}")
            raise ScenarioError(f"{at}: {name!r} {why}{did_you_mean(name, sels + tuple(data))}"
                                f"; selectors: {', '.join(sels)}; data: {', '.join(data)}")
        if op not in ("==", "!=", "in", "not in"):
            raise ScenarioError(f"{at}: {name} names things: compare it by == != in or not in, "
                                f"not {op}")
        kind = _kind(name)
        wanted: set[str] = set()
        for v in values:
            if isinstance(v, Bloc):
                if kind != "owner":
                    raise ScenarioError(f"{at}: bloc({v.name}) lists countries: use it with an "
                                        f"owner selector, not {name}")
                if v.name not in blocs:
                    raise ScenarioError(f"{at}: unknown bloc {v.name!r}"
                                        f"{did_you_mean(v.name, list(blocs))}; blocs: "
                                        f"{', '.join(blocs) or 'none (no blocs file)'}")
                wanted |= {countries.key(c) for c in bloc_countries(blocs[v.name])}
                continue
            _static_check(kind, v, at)
            literals.append(Literal(kind, v, at))
            wanted.add(countries.key(v) if kind == "owner" else v)
        column = f"{name}_key" if kind == "owner" else name
        keep = list(wanted)
        test = (lambda df: df[column].isin(keep).to_numpy())
        return (lambda df: ~test(df)) if op in ("!=", "not in") else test

    return compile_(tree[0]) if tree is not None else \
        (lambda df: np.ones(len(df), dtype=bool))


# -- parameters ------------------------------------------------------------------------------


def _read_csv_values(path: Path, at: str) -> dict[str, float]:
    text = read_text(path, "parameter file", ScenarioError)
    out: dict[str, float] = {}
    for i, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not "".join(row).strip():
            continue
        if len(row) != 2:
            raise ScenarioError(f"{at}: {path.name}:{i}: expected key,value, got {len(row)} "
                                "fields")
        key, value = row[0].strip(), row[1].strip()
        try:
            number = float(value)
        except ValueError:
            if i == 1:
                continue  # a header
            raise ScenarioError(f"{at}: {path.name}:{i}: {value!r} is not a number") from None
        if not math.isfinite(number):
            raise ScenarioError(f"{at}: {path.name}:{i}: {key}: give a finite number, not "
                                f"{value}")
        if key in out:
            raise ScenarioError(f"{at}: {path.name}:{i}: {key!r} is given twice")
        out[key] = number
    return out


def parameter_files_read(constraints: Mapping[str, ConstraintSpec], base: Path | None
                         ) -> dict[str, ConstraintSpec]:
    """The families with every indexed parameter's ``file`` read into its ``values`` (what a
    task sends to a worker that cannot see the scenario's folder)."""
    out = {}
    for name, spec in constraints.items():
        params = {}
        for p, v in spec.parameters.items():
            if isinstance(v, IndexedSpec) and v.file is not None:
                read = _read_csv_values((base or Path.cwd()) / v.file,
                                        f"constraints.{name}.parameters.{p}.file")
                v = v.model_copy(update={"values": {**read, **v.values}, "file": None})
            params[p] = v
        out[name] = spec.model_copy(update={"parameters": params})
    return out


# -- checking an equation: linear, with touched flow that does not cancel ----------------------


class _Lin:
    """A linear form over the touched terms, with random stand-ins for data and parameters:
    a term whose coefficient vanishes for two draws cancels by its form."""

    def __init__(self, coefs=None, const=0.0):
        self.coefs, self.const = dict(coefs or {}), const

    def scale(self, k: float) -> "_Lin":
        return _Lin({v: c * k for v, c in self.coefs.items()}, self.const * k)

    def add(self, other: "_Lin", sign: float = 1.0) -> "_Lin":
        coefs = dict(self.coefs)
        for v, c in other.coefs.items():
            coefs[v] = coefs.get(v, 0.0) + sign * c
        return _Lin(coefs, self.const + sign * other.const)


def _names(node: Expr) -> set[str]:
    return {node.value} if node.kind == "name" else {n for a in node.args for n in _names(a)}


def _check_form(node: Expr, value_of: Callable[[str], float], at: str) -> _Lin:
    k = node.kind
    if k == "num":
        return _Lin(const=node.value)
    if k == "name":
        return _Lin({node.value: 1.0}) if node.value in VARIABLES else \
            _Lin(const=value_of(node.value))
    if k == "sum" or k == "neg":
        inner = _check_form(node.args[0], value_of, at)
        return inner.scale(-1.0) if k == "neg" else inner
    a, b = (_check_form(x, value_of, at) for x in node.args)
    if k in "+-":
        return a.add(b, 1.0 if k == "+" else -1.0)
    if k == "*":
        if a.coefs and b.coefs:
            raise ScenarioError(f"{at}: a product of two touched terms is not linear")
        return a.scale(b.const) if a.coefs else b.scale(a.const)
    if b.coefs:
        raise ScenarioError(f"{at}: dividing by a touched term is not linear")
    if _names(node.args[1]) & FOCAL_TERMS:
        raise ScenarioError(f"{at}: dividing by a focal term divides by zero wherever the node "
                            "is not focal")
    if b.const == 0.0:
        raise ScenarioError(f"{at}: divides by zero (the divisor is 0 whatever the data)")
    return a.scale(1.0 / b.const)


# -- the family ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Equation:
    lhs: Expr
    sense: str
    rhs: Expr
    mask: Mask
    where: str
    at: str


def _owner_words(owners: Mapping[str, str]) -> list[str]:
    """Names a user may mean an owner by: as the networks spell it, its common name, and the
    everyday words for it (``Korea`` for ``Korea, Republic of``)."""
    words = list(owners.values()) + [countries.label(k) for k in owners]
    words += [w.title() for w, iso in countries.aliases().items() if iso in owners]
    return words


class YamlFamily:
    """What a YAML family needs beyond :class:`ConstraintFamily`: its members and rows in a
    network, and the check of the values it names."""

    def __init__(self, name: str, spec: ConstraintSpec, equations: list[_Equation],
                 mask: Mask, literals: list[Literal], parameters: dict, at: Callable):
        self.name, self.spec, self.equations, self.mask = name, spec, equations, mask
        self.literals, self.parameters, self.at = literals, parameters, at
        self.foreach, self.group_by = spec.foreach, spec.group_by

    def selected(self, network, eq: _Equation) -> pd.DataFrame:
        df = member_fields(network, self.foreach)
        return df[self.mask(df) & eq.mask(df)]

    def groups(self, members: pd.DataFrame) -> dict[tuple, np.ndarray]:
        """Group key -> positions (in ``members``) of its members."""
        if not self.group_by:
            return {(): np.arange(len(members))} if len(members) else {}
        out = members.reset_index(drop=True).groupby(list(self.group_by), sort=True).indices
        return {(k if isinstance(k, tuple) else (k,)): v for k, v in out.items()}

    def count_rows(self, network) -> int:
        n = 0
        for eq in self.equations:
            members = self.selected(network, eq)
            n += len(members) if self.group_by is None else len(self.groups(members))
        return n

    def check(self, networks: Mapping[str, object]) -> dict[str, int]:
        """Every value named exists in some network of the run, and some network has a row
        (unless ``allow_empty``); returns the rows per network."""
        seen: dict[str, dict[str, str]] = {"node": {}, "owner": {}}
        for net in networks.values():
            seen["node"].update({n: n for n in net.nodes.index})
            seen["owner"].update({countries.key(o): str(o) for o in pd.unique(net.nodes["owner"])})
        materials = {net.material for net in networks.values()}
        for lit in self.literals:
            if lit.kind == "node" and lit.value not in seen["node"]:
                raise ScenarioError(f"{lit.at}: no node {lit.value!r} in the run's networks"
                                    f"{did_you_mean(lit.value, list(seen['node']))}")
            if lit.kind == "owner" and countries.key(lit.value) not in seen["owner"]:
                raise ScenarioError(f"{lit.at}: no owner {lit.value!r} in the run's networks"
                                    f"{did_you_mean(lit.value, _owner_words(seen['owner']))}")
            if lit.kind == "material" and lit.value not in materials:
                raise ScenarioError(f"{lit.at}: the run has no {lit.value} network (it has "
                                    f"{', '.join(sorted(materials))})")
        rows = {m: self.count_rows(net) for m, net in networks.items()}
        if not any(rows.values()) and not self.spec.allow_empty:
            raise ScenarioError(f"{self.at()}: constraint family {self.name!r} selects no row "
                                f"in any network of the run ({', '.join(networks)}); check its "
                                "where, or set allow_empty: true")
        return rows

    # -- rows ----------------------------------------------------------------------------------

    def rule(self, m, **params):
        import pyomo.environ as pyo

        net = m.network
        exprs: dict = {}
        several = len(self.equations) > 1
        for k, eq in enumerate(self.equations):
            members = self.selected(net, eq).reset_index(drop=True)
            if not len(members):
                continue
            ctx = _Rows(self, m, members, params)
            if self.group_by is None:
                keys = list(zip(members["source"], members["target"])) \
                    if self.foreach == "arcs" else list(members["node"])
                for i, key in enumerate(keys):
                    label = (k + 1, *key) if several and isinstance(key, tuple) else \
                        (k + 1, key) if several else key
                    exprs[label] = ctx.row(eq, member=i, label=label)
            else:
                for key, pos in self.groups(members).items():
                    key = key if key else ("total",)
                    label = (k + 1, *key) if several else key if len(key) > 1 else key[0]
                    exprs[label] = ctx.row(eq, group=(key, pos), label=label)
        labels = list(exprs)
        dimen = len(labels[0]) if labels and isinstance(labels[0], tuple) else 1
        index = pyo.Set(initialize=labels, dimen=dimen, ordered=True)
        m.add_component(f"{self.name}_rows", index)
        index.doc = f"Rows of {self.name}"

        def row(m, *label):
            return exprs[label if dimen > 1 else label[0]]

        return pyo.Constraint(index, rule=row)


class _Rows:
    """Evaluates a family's equations for the members of one network's model."""

    def __init__(self, fam: YamlFamily, m, members: pd.DataFrame, params: Mapping):
        self.fam, self.m, self.members, self.params = fam, m, members, params
        self.cols = {c: members[c].tolist() for c in members.columns}
        if fam.foreach == "nodes":
            ins: dict[str, list] = {}
            outs: dict[str, list] = {}
            for a in m.arcs:
                outs.setdefault(a[0], []).append(a)
                ins.setdefault(a[1], []).append(a)
            self.ins, self.outs = ins, outs

    def term(self, name: str, i: int):
        m, c = self.m, self.cols
        if self.fam.foreach == "arcs":
            s, t = c["source"][i], c["target"][i]
            if name == "touched":
                return m.touched[s, t]
            if name == "focal_source":
                return m.focal[s]
            if name == "focal_target":
                return m.focal[t]
            return c[name][i]
        n = c["node"][i]
        if name == "touched_in":
            return sum(m.touched[a] for a in self.ins.get(n, ()))
        if name == "touched_out":
            return sum(m.touched[a] for a in self.outs.get(n, ()))
        if name == "focal":
            return m.focal[n]
        return c[name][i]

    def parameter(self, name: str, member: int | None, key: tuple | None):
        p = self.params[name]
        if not isinstance(p, IndexedParameter):
            return p
        if member is not None:
            return p[self.cols[p.by][member]]
        return p[key[self.fam.group_by.index(p.by)]]

    def _divide(self, a, b, divisor: Expr, label):
        import pyomo.environ as pyo

        if pyo.value(b) == 0:
            raise ExtensionError(f"constraint family {self.fam.name}: row {label}: divides by "
                                 f"zero ({_text(divisor)} is 0 there)")
        return a / b

    def value(self, node: Expr, member: int, label):
        """A side (or part) of one member's row."""
        k = node.kind
        if k == "num":
            return node.value
        if k == "name":
            if node.value in self.params:
                return self.parameter(node.value, member, None)
            return self.term(node.value, member)
        if k == "neg":
            return -self.value(node.args[0], member, label)
        a, b = (self.value(x, member, label) for x in node.args)
        return a + b if k == "+" else a - b if k == "-" else a * b if k == "*" else \
            self._divide(a, b, node.args[1], label)

    def grouped(self, node: Expr, key: tuple, pos, label):
        """A side (or part) of a group's row: sums run over the group's members; outside
        them stand group-level parameters and numbers."""
        import pyomo.environ as pyo

        k = node.kind
        if k == "num":
            return node.value
        if k == "name":
            return self.parameter(node.value, None, key)
        if k == "sum":
            return pyo.quicksum(self.value(node.args[0], int(i), label) for i in pos)
        if k == "neg":
            return -self.grouped(node.args[0], key, pos, label)
        a, b = (self.grouped(x, key, pos, label) for x in node.args)
        return a + b if k == "+" else a - b if k == "-" else a * b if k == "*" else \
            self._divide(a, b, node.args[1], label)

    def row(self, eq: _Equation, label, member: int | None = None, group=None):
        if group is None:
            left, right = self.value(eq.lhs, member, label), self.value(eq.rhs, member, label)
        else:
            key, pos = group
            left, right = (self.grouped(x, key, pos, label) for x in (eq.lhs, eq.rhs))
        return left <= right if eq.sense == "<=" else left >= right if eq.sense == ">=" \
            else left == right


def _text(node: Expr) -> str:
    k = node.kind
    if k == "num":
        return f"{node.value:g}"
    if k == "name":
        return node.value
    if k == "sum":
        return f"sum({_text(node.args[0])})"
    if k == "neg":
        return f"-{_text(node.args[0])}"
    return f"({_text(node.args[0])} {k} {_text(node.args[1])})"


# -- LaTeX ------------------------------------------------------------------------------------


def _latex(node: Expr, symbols: Mapping[str, str], over: str, prec: int = 0) -> str:
    k = node.kind
    if k == "num":
        return f"{node.value:g}"
    if k == "name":
        return symbols.get(node.value, rf"\mathrm{{{node.value}}}".replace("_", r"\_"))
    if k == "sum":
        inner = _latex(node.args[0], symbols, over)
        return rf"\sum_{{{over}}} " + (rf"\left({inner}\right)" if node.args[0].kind in "+-"
                                        else inner)
    if k == "neg":
        return "-" + _latex(node.args[0], symbols, over, 3)
    mine = {"+": 1, "-": 1, "*": 2, "/": 2}[k]
    a = _latex(node.args[0], symbols, over, mine)
    b = _latex(node.args[1], symbols, over, mine + (k in "-/"))
    out = rf"\frac{{{a}}}{{{_latex(node.args[1], symbols, over)}}}" if k == "/" else \
        f"{a} {k} {b}" if k in "+-" else rf"{a} \, {b}"
    return rf"\left({out}\right)" if mine < prec else out


def _param_latex(name: str, p, foreach: str) -> str:
    base = rf"\mathrm{{{name}}}".replace("_", r"\_")
    if isinstance(p, Indexed):
        return base + r"_{\mathrm{" + p.by.replace("_", r"\_") + "}}"
    return base


# -- building a family from its spec -----------------------------------------------------------


def _expand(node: Expr, expressions: Mapping[str, Expr], at: str, path=()) -> Expr:
    if node.kind == "name" and node.value in expressions:
        if node.value in path:
            raise ScenarioError(f"{at}: expression {node.value!r} refers to itself "
                                f"({' -> '.join(path + (node.value,))})")
        return _expand(expressions[node.value], expressions, at, path + (node.value,))
    if node.args:
        return Expr(node.kind, node.value, tuple(_expand(a, expressions, at, path)
                                                 for a in node.args))
    return node


def _check_names(node: Expr, foreach: str, grouped: list[str] | None, params: Mapping,
                 at: str, inside_sum: bool = False) -> None:
    k = node.kind
    if k == "sum":
        if grouped is None:
            raise ScenarioError(f"{at}: sum(...) adds over a group: give group_by (e.g. "
                                "group_by: [] for one row in total)")
        if inside_sum:
            raise ScenarioError(f"{at}: a sum inside a sum adds nothing more")
        _check_names(node.args[0], foreach, grouped, params, at, True)
        return
    if k == "name":
        name, member_terms = node.value, terms(foreach)
        if name in params:
            p = params[name]
            if isinstance(p, Indexed) and grouped is not None and not inside_sum \
                    and p.by not in grouped:
                raise ScenarioError(f"{at}: parameter {name} is indexed by {p.by}, which is no "
                                    f"group_by selector: use it inside sum(...) or group by "
                                    f"{p.by}")
            return
        if name in member_terms:
            if grouped is not None and not inside_sum:
                raise ScenarioError(f"{at}: {name} is a term of one member: with group_by it "
                                    f"stands inside sum(...), e.g. sum({name})")
            return
        if name in KEYWORDS:
            raise ScenarioError(f"{at}: {name!r} is a word of the language, not a term")
        known = sorted(set(member_terms) | set(params))
        raise ScenarioError(f"{at}: unknown name {name!r}{did_you_mean(name, known)}; for "
                            f"{foreach}: {', '.join(known)}")
    for a in node.args:
        _check_names(a, foreach, grouped, params, at, inside_sum)


def _resolve_parameters(spec: ConstraintSpec, at: Callable, base: Path | None,
                        foreach: str, literals: list[Literal]) -> dict:
    out: dict = {}
    member_terms = terms(foreach)
    for p, value in spec.parameters.items():
        here = at("parameters", p)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", p):
            raise ScenarioError(f"{here}: a parameter name is an ASCII identifier, not {p!r}")
        if p in member_terms or p in KEYWORDS or p in spec.expressions or \
                p in selectors(foreach):
            raise ScenarioError(f"{here}: parameter {p!r} has the name of a term, selector, "
                                "expression or word of the language; rename it")
        if not isinstance(value, IndexedSpec):
            out[p] = float(value)
            continue
        if value.by not in selectors(foreach):
            raise ScenarioError(f"{at('parameters', p, 'by')}: {value.by!r} is no selector of "
                                f"{foreach}{did_you_mean(value.by, selectors(foreach))}; "
                                f"choose from {', '.join(selectors(foreach))}")
        values = dict(value.values)
        if value.file is not None:
            path = (base or Path.cwd()) / value.file
            for k, v in _read_csv_values(path, at("parameters", p, "file")).items():
                values.setdefault(k, v)
        if not values and value.default is None:
            raise ScenarioError(f"{here}: give values, a file or a default")
        kind = _kind(value.by)
        for k in values:
            if not re.fullmatch(r"[^\x00-\x1f]{1,200}", k):
                raise ScenarioError(f"{at('parameters', p, 'values')}: {k!r} is no name")
            _static_check(kind, k, at("parameters", p, "values", k))
            literals.append(Literal(kind, k, at("parameters", p, "values", k)))
        out[p] = Indexed(value.by, values, value.default)
    return out


def yaml_family(name: str, spec: ConstraintSpec | Mapping, at: Callable[..., str],
                origin: str = "<scenario>", blocs: Mapping[str, dict] | None = None,
                base: Path | None = None) -> ConstraintFamily:
    """A declarative constraint as a :class:`ConstraintFamily`, checked now (``at(*keys)``
    gives the ``file:line: constraints.NAME.key`` prefix of a key of it)."""
    if not isinstance(spec, ConstraintSpec):
        try:
            spec = ConstraintSpec.model_validate(spec)
        except ValidationError as e:
            err = e.errors()[0]
            loc = [x for x in err["loc"] if x not in PARAMETER_TAGS]
            raise ScenarioError(f"{at(*loc)}: {err['msg']}") from None
    check_family_name(name, f"{at()}")
    blocs = blocs or {}
    foreach = spec.foreach
    if foreach not in ("arcs", "nodes"):
        raise ScenarioError(f"{at('foreach')}: {foreach!r} is neither arcs nor nodes"
                            f"{did_you_mean(foreach, ['arcs', 'nodes'])}")
    if spec.group_by is not None:
        for g in spec.group_by:
            if g not in selectors(foreach):
                raise ScenarioError(f"{at('group_by')}: {g!r} is no selector of {foreach}"
                                    f"{did_you_mean(g, selectors(foreach))}; choose from "
                                    f"{', '.join(selectors(foreach))}")
        if len(set(spec.group_by)) != len(spec.group_by):
            raise ScenarioError(f"{at('group_by')}: a selector is named twice")
    if (spec.equation is None) == (spec.equations is None):
        raise ScenarioError(f"{at()}: give either equation or equations")
    if spec.equations is not None and not spec.equations:
        raise ScenarioError(f"{at('equations')}: give at least one equation")
    literals: list[Literal] = []
    params = _resolve_parameters(spec, at, base, foreach, literals)
    expressions: dict[str, Expr] = {}
    for e, text in spec.expressions.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", e) or e in terms(foreach) or \
                e in KEYWORDS or e in selectors(foreach):
            raise ScenarioError(f"{at('expressions', e)}: {e!r} cannot name an expression (an "
                                "ASCII identifier that is no term, selector or word of the "
                                "language)")
        expressions[e] = _parse(1, text, at("expressions", e), "expression")[0]
    sel = _parse(2, spec.where, at("where"), "selection") if spec.where.strip() else None
    mask = _compile_where(sel, foreach, at("where"), blocs, literals)
    sources = [(spec.equation, "", at("equation"), at("where"))] if spec.equation is not None \
        else [(q.equation, q.where, at("equations", i, "equation"), at("equations", i, "where"))
              for i, q in enumerate(spec.equations)]
    rng = [random.Random(7), random.Random(11)]
    draws = [{}, {}]
    equations = []
    for text, where, here, where_at in sources:
        parsed = _parse(0, text, here, "equation")
        lhs, sense, rhs = (_expand(parsed["lhs"], expressions, here), parsed["sense"],
                           _expand(parsed["rhs"], expressions, here))
        for side in (lhs, rhs):
            _check_names(side, foreach, spec.group_by, params, here)
        forms = []
        for r, d in zip(rng, draws):
            def value_of(n, r=r, d=d):
                return d.setdefault(n, r.uniform(0.5, 2.0))
            forms.append(_check_form(lhs, value_of, here).add(_check_form(rhs, value_of, here),
                                                                -1.0))
        if not any(v in VARIABLES for f in forms for v in f.coefs):
            raise ScenarioError(f"{here}: it involves no touched flow "
                                f"({', '.join(t for t in terms(foreach) if t in VARIABLES)})")
        if all(abs(c) < 1e-9 for f in forms for c in f.coefs.values()):
            raise ScenarioError(f"{here}: its touched terms cancel: every row would state a "
                                "constant")
        emask = _compile_where(_parse(2, where, where_at, "selection"), foreach, where_at,
                               blocs, literals) if where.strip() else \
            (lambda df: np.ones(len(df), dtype=bool))
        equations.append(_Equation(lhs, sense, rhs, emask, where, here))
    cases = parse_cases(spec.cases, at("cases"))
    yf = YamlFamily(name, spec, equations, mask, literals, params, at)

    def rule(m, **values):
        return yf.rule(m, **values)

    rule.__name__ = name
    text = _describe(name, spec, equations, params)
    return ConstraintFamily(name, spec.title, cases, rule, params, "t",
                            f"{origin}: constraints.{name}", text, declared=yf,
                            allow_empty=spec.allow_empty)


def _describe(name: str, spec: ConstraintSpec, equations: Sequence[_Equation],
              params: Mapping) -> str:
    """The family's LaTeX (first line) and its selection in words."""
    foreach = spec.foreach
    letter, big = ("a", "A") if foreach == "arcs" else ("n", "N")
    label = rf"\mathrm{{{name}}}".replace("_", r"\_")
    symbols = {**terms(foreach), **{p: _param_latex(p, v, foreach) for p, v in params.items()}}
    if spec.group_by is None:
        over, domain = "", rf"\quad \forall {letter} \in {big}^{{{label}}}"
    elif not spec.group_by:
        over, domain = rf"{letter} \in {big}^{{{label}}}", ""
    else:
        over = rf"{letter} \in {big}^{{{label}}}_g"
        domain = rf"\quad \forall g \in G^{{{label}}}"
    rel = {"<=": r"\le", ">=": r"\ge", "==": "="}
    parts = [f"{_latex(q.lhs, symbols, over)} {rel[q.sense]} {_latex(q.rhs, symbols, over)}"
             for q in equations]
    latex = (r" \qquad ".join(parts)) + domain
    words = [spec.description.strip()]
    sym = f"${big}^{{{label}}}$"
    words.append(f"{sym}: the {foreach} with `{spec.where.strip()}`." if spec.where.strip()
                 else f"{sym}: every one of the {foreach}.")
    if spec.group_by:
        words.append(f"$G^{{{label}}}$: the distinct ({', '.join(spec.group_by)}) among them; "
                     f"${big}^{{{label}}}_g$: those of group $g$.")
    elif spec.group_by is not None:
        words.append("One row in total.")
    for i, q in enumerate(equations):
        if q.where.strip():
            words.append(f"Equation {i + 1} only where `{q.where.strip()}`.")
    for p, v in params.items():
        if isinstance(v, Indexed):
            words.append(f"{p}: one value per {v.by} ({len(v.values)} given"
                         + (f", else {v.default:g}" if v.default is not None else "") + ").")
    return latex + "\n" + " ".join(w for w in words if w)

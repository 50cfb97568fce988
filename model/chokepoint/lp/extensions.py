"""Users' constraint families: from Python files or modules, and declared in YAML.

``load_extension("rules.py", base)`` executes a file (relative to ``base``) as a fresh module,
or imports a module by name, and collects the :class:`ConstraintFamily` objects it defines. The
file's SHA-256 travels with it, so a worker process loads exactly the code the run started
with, and a resumed run notices a changed rule.

``yaml_family(name, spec)`` turns a scenario's declarative constraint into the same kind of
family. The grammar (parsed with pyparsing; nothing is ``eval``-ed):

- ``foreach``: ``arcs`` (one row per selected arc) or ``nodes`` (one row per selected node);
- ``where``: a selection, e.g. ``source_owner == China and target_stage in [cathode_pool]``:
  comparisons ``==``, ``!=``, ``in [...]``, ``not in [...]`` of a selector with a value (quoted,
  or a bare word), joined by ``and``, ``or``, ``not`` and parentheses. Selectors: for arcs
  ``source target source_owner target_owner source_stage target_stage material``; for nodes
  ``node owner stage material``. Owners match by country (``Korea`` is ``Korea, Republic of``);
  stages by stage name or focal stage (``cathode`` is ``cathode_pool``);
- ``equation``: ``LHS <= RHS`` (or ``>=``, ``==``), each side a linear expression of numbers,
  the family's parameters and, for arcs, ``touched tonnes focal_source focal_target
  outflow_source inflow_target``; for nodes ``touched_in touched_out inflow outflow focal``;
  with ``+ - * /`` and parentheses; a product of two touched terms, or a division by one, is
  refused (the LP stays linear).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import re
import sys
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import pyparsing as pp
from pydantic import BaseModel, ConfigDict, Field

from .. import countries
from ..cases import Case
from ..errors import ChokepointError, ScenarioError, did_you_mean
from ..network import FOCAL_STAGES, Stage
from .families import ConstraintFamily, parse_cases

# -- Python files and modules ----------------------------------------------------------------


@dataclass(frozen=True)
class Extension:
    """A loaded file or module of users' families."""

    ref: str  # as the scenario wrote it
    target: str  # absolute file path, or module name
    sha256: str
    families: tuple[ConstraintFamily, ...]

    @property
    def label(self) -> str:
        """The file's name (or the module's): no folder of the user's machine."""
        return Path(self.ref).name if is_file_ref(self.ref) else self.ref

    def describe(self) -> dict:
        return {"extension": self.label, "sha256": self.sha256,
                "families": [f.name for f in self.families]}


_LOADED: dict[tuple[str, str], Extension] = {}


def is_file_ref(ref: str) -> bool:
    return ref.endswith(".py") or "/" in ref or "\\" in ref


def load_extension(ref: str, base: Path | None = None, where: str = "extensions",
                   sha256: str | None = None) -> Extension:
    """Load ``ref`` (a ``.py`` file relative to ``base``, or an importable module name) and
    collect its families. With ``sha256``, the source must still be that content."""
    if is_file_ref(ref):
        path = (Path(base or Path.cwd()) / ref).resolve()
        if not path.exists():
            raise ScenarioError(f"{where}: {ref}: no such extension file ({path})")
        from ..errors import read_bytes

        try:  # a regular file, read with a bound (never /dev/zero whole)
            source = read_bytes(path, "extension file", ScenarioError)
        except ScenarioError as e:
            raise ScenarioError(f"{where}: {ref}: {str(e).split(': ', 1)[-1]}") from None
        target, digest = str(path), hashlib.sha256(source).hexdigest()
    else:
        if not re.fullmatch(r"[A-Za-z_][\w.]*", ref):
            raise ScenarioError(f"{where}: {ref!r} is neither a .py file nor a module name")
        beside = Path(base or Path.cwd()) / ref
        if beside.exists():  # notes.txt, rules.yaml: a file, but not Python
            raise ScenarioError(f"{where}: {ref}: an extension is a Python file ending in .py "
                                "(or an importable module name); this file is not one")
        target = ref
        spec = importlib.util.find_spec(ref) if "." not in ref or \
            importlib.util.find_spec(ref.split(".")[0]) else None
        if spec is None:
            raise ScenarioError(f"{where}: no module named {ref!r} (give a .py file, or "
                                "install the module)")
        origin = spec.origin and Path(spec.origin)
        digest = hashlib.sha256(origin.read_bytes()).hexdigest() if origin and \
            origin.is_file() else "builtin"
    if sha256 is not None and sha256 != digest:
        raise ChokepointError(f"{where}: {ref} changed since the run started (sha256 "
                              f"{sha256[:12]} -> {digest[:12]}); re-run to use the new rules")
    got = _LOADED.get((target, digest))
    if got is None:
        module = _exec_file(Path(target), digest, ref, where) if is_file_ref(ref) \
            else _import(ref, where)
        label = Path(ref).name if is_file_ref(ref) else ref
        found = tuple(replace(v, source=f"{label}#sha256={digest[:12]}")
                      for v in vars(module).values() if isinstance(v, ConstraintFamily))
        if not found:
            raise ScenarioError(f"{where}: {ref} defines no constraint family (decorate a "
                                "function with @chokepoint.constraint_family)")
        got = _LOADED[(target, digest)] = Extension(ref, target, digest, found)
    return got if got.ref == ref else replace(got, ref=ref)


def _exec_file(path: Path, digest: str, ref: str, where: str):
    name = f"chokepoint_extension_{digest[:16]}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        del sys.modules[name]
        if e.lineno is None:  # null bytes, or not text at all
            raise ScenarioError(f"{where}: {ref}: not Python source ({e.msg})") from None
        raise ScenarioError(f"{where}: {ref}:{e.lineno}: syntax error: {e.msg}") from None
    except SystemExit as e:  # sys.exit at import would end the run without a word
        del sys.modules[name]
        raise ScenarioError(f"{where}: {ref}: called sys.exit({e.code!r}) while being loaded; "
                            "an extension defines constraint families, it may not end the "
                            "run") from None
    except Exception as e:  # the user's code: where it failed, in one line
        del sys.modules[name]
        line = next((f.lineno for f in reversed(traceback.extract_tb(e.__traceback__))
                     if Path(f.filename) == path), None)
        at = f":{line}" if line else ""
        raise ScenarioError(f"{where}: {ref}{at}: {type(e).__name__}: {e}") from None
    return module


def _import(name: str, where: str):
    try:
        return importlib.import_module(name)
    except Exception as e:
        raise ScenarioError(f"{where}: importing {name}: {type(e).__name__}: {e}") from None


def family_source(family: ConstraintFamily) -> str | None:
    """The file or module a family can be loaded from in another process, or None when it was
    defined where no other process can load it (an interactive session)."""
    module = sys.modules.get(family.rule.__module__)
    if module is None:
        return None
    if family.rule.__module__.startswith("chokepoint_extension_"):
        return getattr(module, "__file__", None)
    if family.rule.__module__ == "__main__":
        path = getattr(module, "__file__", None)
        return path if path and Path(path).is_file() else None
    return family.rule.__module__


# -- YAML constraints ------------------------------------------------------------------------


class ConstraintSpec(BaseModel):
    """A declarative constraint family (see the module docstring for the grammar)."""

    model_config = ConfigDict(extra="forbid")
    title: str = Field(description="What the rule states, in a few words.")
    description: str = Field("", description="More words, copied into the math and results.")
    cases: list[str] = Field([c.value for c in Case], min_length=1,
                             description="Cases whose models get the rows.")
    foreach: str = Field(description="`arcs` or `nodes`: one row per selected arc or node.")
    where: str = Field("", description="Selection of arcs or nodes; empty selects all.")
    equation: str = Field(description="`LHS <= RHS`, `>=` or `==`; linear in touched flow.")
    parameters: dict[str, float] = Field({}, description="Declared parameters -> default.")


ARC_SELECTORS = ("source", "target", "source_owner", "target_owner", "source_stage",
                 "target_stage", "material")
NODE_SELECTORS = ("node", "owner", "stage", "material")
ARC_TERMS = {"touched": r"x_a", "tonnes": r"v_a", "focal_source": r"f_{\mathrm{src}(a)}",
             "focal_target": r"f_{\mathrm{tgt}(a)}", "outflow_source": r"\bar{v}_{\mathrm{src}(a)}",
             "inflow_target": r"\hat{v}_{\mathrm{tgt}(a)}"}
NODE_TERMS = {"touched_in": r"\sum_{a \in \mathrm{in}(n)} x_a",
              "touched_out": r"\sum_{a \in \mathrm{out}(n)} x_a", "inflow": r"\hat{v}_n",
              "outflow": r"\bar{v}_n", "focal": r"f_n"}
VARIABLES = {"touched", "touched_in", "touched_out"}


@lru_cache(maxsize=1)
def _grammar():
    pp.ParserElement.enable_packrat()
    name = pp.Word(pp.alphas + "_", pp.alphanums + "_")
    number = pp.pyparsing_common.number
    arith = pp.infix_notation(number | name, [
        (pp.Literal("-"), 1, pp.OpAssoc.RIGHT),
        (pp.one_of("* /"), 2, pp.OpAssoc.LEFT),
        (pp.one_of("+ -"), 2, pp.OpAssoc.LEFT),
    ])
    equation = arith("lhs") + pp.one_of("<= >= ==")("sense") + arith("rhs")
    value = pp.QuotedString('"') | pp.QuotedString("'") | pp.Word(pp.alphanums + "_.-")
    values = pp.Suppress("[") + pp.Group(pp.DelimitedList(value)) + pp.Suppress("]")
    negin = pp.Keyword("not") + pp.Keyword("in")
    compare = pp.Group(name + (pp.one_of("== !=") + value
                               | pp.Group(negin)("op") + values
                               | pp.Keyword("in") + values))
    where = pp.infix_notation(compare, [
        (pp.Keyword("not"), 1, pp.OpAssoc.RIGHT),
        (pp.Keyword("and"), 2, pp.OpAssoc.LEFT),
        (pp.Keyword("or"), 2, pp.OpAssoc.LEFT),
    ])
    return equation + pp.StringEnd(), where + pp.StringEnd()


def _parse(grammar, text: str, where: str, what: str):
    try:
        return grammar.parse_string(text, parse_all=True)
    except pp.ParseException as e:
        raise ScenarioError(f"{where}: cannot parse the {what} at column {e.col}: "
                            f"{text!r}") from None


def _terms(node) -> list:
    return [node] if isinstance(node, (str, int, float)) else \
        [x for part in node for x in _terms(part)]


def _degree(node, where: str) -> int:
    """1 if the expression involves touched flow, else 0; refuse products of touched terms."""
    if isinstance(node, str):
        return 1 if node in VARIABLES else 0
    if isinstance(node, (int, float)):
        return 0
    node = list(node)
    if len(node) == 2:  # unary minus
        return _degree(node[1], where)
    degrees = [_degree(x, where) for x in node[0::2]]
    ops = node[1::2]
    if any(o == "*" for o in ops) and sum(degrees) > 1:
        raise ScenarioError(f"{where}: a product of two touched terms is not linear")
    if any(o == "/" and d for o, d in zip(ops, degrees[1:])):
        raise ScenarioError(f"{where}: dividing by a touched term is not linear")
    return max(degrees)


def _latex(node, symbols: Mapping[str, str]) -> str:
    if isinstance(node, str):
        return symbols.get(node, rf"\mathrm{{{node}}}".replace("_", r"\_"))
    if isinstance(node, (int, float)):
        return f"{node:g}"
    node = list(node)
    if len(node) == 2:
        return "-" + _latex(node[1], symbols)
    out = _latex(node[0], symbols)
    for op, x in zip(node[1::2], node[2::2]):
        inner = _latex(x, symbols)
        if not isinstance(x, (str, int, float)) and len(list(x)) > 2:
            inner = f"({inner})"
        out += {"*": " ", "/": " / ", "+": " + ", "-": " - "}[op] + inner
    return out


def _evaluate(node, lookup):
    if isinstance(node, str):
        return lookup(node)
    if isinstance(node, (int, float)):
        return float(node)
    node = list(node)
    if len(node) == 2:
        return -_evaluate(node[1], lookup)
    out = _evaluate(node[0], lookup)
    for op, x in zip(node[1::2], node[2::2]):
        y = _evaluate(x, lookup)
        out = out * y if op == "*" else out / y if op == "/" else out + y if op == "+" \
            else out - y
    return out


def _stage_matches(value: str, stage: Stage) -> bool:
    return value == stage.value or stage in FOCAL_STAGES.get(value, ())


STAGE_WORDS = sorted({s.value for s in Stage} | set(FOCAL_STAGES))


def _selection(tree, foreach: str, where: str):
    """A predicate over a row's fields (dict) from the parsed ``where`` expression."""
    selectors = ARC_SELECTORS if foreach == "arcs" else NODE_SELECTORS

    def compile_(node):
        node = list(node) if not isinstance(node, str) else node
        if isinstance(node, list) and node and node[0] == "not" and len(node) == 2:
            inner = compile_(node[1])
            return lambda r: not inner(r)
        if isinstance(node, list) and len(node) >= 3 and node[1] in ("and", "or"):
            parts = [compile_(x) for x in node[0::2]]
            return (lambda r: all(p(r) for p in parts)) if node[1] == "and" else \
                (lambda r: any(p(r) for p in parts))
        selector, op, value = node[0], node[1], node[2]
        if selector not in selectors:
            raise ScenarioError(f"{where}: unknown selector {selector!r} for {foreach}"
                                f"{did_you_mean(selector, selectors)}; choose from "
                                f"{', '.join(selectors)}")
        negate = op == "!=" or (not isinstance(op, str))  # "not in" arrives grouped
        wanted = [value] if isinstance(value, str) else list(value)
        if selector.endswith("stage"):
            bad = [w for w in wanted if w not in STAGE_WORDS]
            if bad:
                raise ScenarioError(f"{where}: unknown stage {bad[0]!r}"
                                    f"{did_you_mean(bad[0], STAGE_WORDS)}")
            test = lambda r, s=selector: any(_stage_matches(w, r[s]) for w in wanted)  # noqa
        elif selector.endswith("owner"):
            keys = {countries.key(w) for w in wanted}
            test = lambda r, s=selector: countries.key(r[s]) in keys  # noqa: E731
        else:
            test = lambda r, s=selector: r[s] in wanted  # noqa: E731
        return (lambda r: not test(r)) if negate else test

    return compile_(tree[0]) if tree is not None else (lambda r: True)


def yaml_family(name: str, spec: ConstraintSpec | Mapping, where: str,
                origin: str = "<scenario>") -> ConstraintFamily:
    """A declarative constraint as a :class:`ConstraintFamily` (checked now, built per model)."""
    if not isinstance(spec, ConstraintSpec):
        spec = ConstraintSpec.model_validate(spec)
    if not re.fullmatch(r"[A-Za-z_]\w*", name):
        raise ScenarioError(f"{where}: a family name is a Python identifier, not {name!r}")
    if spec.foreach not in ("arcs", "nodes"):
        raise ScenarioError(f"{where}.foreach: {spec.foreach!r} is neither arcs nor nodes"
                            f"{did_you_mean(spec.foreach, ['arcs', 'nodes'])}")
    eq_grammar, where_grammar = _grammar()
    eq = _parse(eq_grammar, spec.equation, f"{where}.equation", "equation")
    sel = _parse(where_grammar, spec.where, f"{where}.where", "selection") \
        if spec.where.strip() else None
    terms = ARC_TERMS if spec.foreach == "arcs" else NODE_TERMS
    known = set(terms) | set(spec.parameters)
    for t in _terms([eq["lhs"], eq["rhs"]]):
        if isinstance(t, str) and t not in known and t not in ("*", "/", "+", "-"):
            raise ScenarioError(f"{where}.equation: unknown name {t!r}"
                                f"{did_you_mean(t, sorted(known))}; for {spec.foreach}: "
                                f"{', '.join(sorted(known))}")
    if _degree(eq["lhs"], f"{where}.equation") + _degree(eq["rhs"], f"{where}.equation") == 0:
        raise ScenarioError(f"{where}.equation: it involves no touched flow "
                            f"({', '.join(t for t in terms if t in VARIABLES)})")
    predicate = _selection(sel, spec.foreach, f"{where}.where")
    cases = parse_cases(spec.cases, f"{where}.cases")
    symbols = {**terms, **{p: rf"\mathrm{{{p}}}".replace("_", r"\_") for p in spec.parameters}}
    rel = {"<=": r"\le", ">=": r"\ge", "==": "="}[eq["sense"]]
    domain = r"a \in A" if spec.foreach == "arcs" else r"n \in N"
    label = name.replace("_", r"\_")
    latex = (f"{_latex(eq['lhs'], symbols)} {rel} {_latex(eq['rhs'], symbols)} "
             rf"\quad \forall {domain}^{{\mathrm{{{label}}}}}")
    text = latex + "\n" + " ".join(x for x in [spec.description.strip(), (
        f"Selection ({spec.foreach}): {spec.where}." if spec.where.strip() else
        f"Every one of the {spec.foreach}.")] if x)
    lhs, sense, rhs = eq["lhs"], eq["sense"], eq["rhs"]
    foreach = spec.foreach

    def rule(m, **params):
        import pyomo.environ as pyo

        net = m.network
        owner, stage = net.nodes["owner"], net.nodes["stage"]
        if foreach == "arcs":
            rows = [(s, t) for s, t in zip(net.arcs["source"], net.arcs["target"])
                    if predicate({"source": s, "target": t, "source_owner": owner[s],
                                  "target_owner": owner[t], "source_stage": stage[s],
                                  "target_stage": stage[t], "material": net.material})]
        else:
            rows = [n for n in net.nodes.index
                    if predicate({"node": n, "owner": owner[n], "stage": stage[n],
                                  "material": net.material})]
            ins: dict[str, list] = {n: [] for n in rows}
            outs: dict[str, list] = {n: [] for n in rows}
            for a in m.arcs:
                if a[1] in ins:
                    ins[a[1]].append(a)
                if a[0] in outs:
                    outs[a[0]].append(a)

        def lookup_for(m, idx):
            def lookup(term):
                if term in params:
                    return params[term]
                if foreach == "arcs":
                    s, t = idx
                    return {"touched": lambda: m.touched[s, t], "tonnes": lambda: m.tonnes[s, t],
                            "focal_source": lambda: m.focal[s], "focal_target": lambda: m.focal[t],
                            "outflow_source": lambda: m.outflow[s],
                            "inflow_target": lambda: m.inflow[t]}[term]()
                n = idx
                return {"touched_in": lambda: sum(m.touched[a] for a in ins[n]),
                        "touched_out": lambda: sum(m.touched[a] for a in outs[n]),
                        "inflow": lambda: m.inflow[n], "outflow": lambda: m.outflow[n],
                        "focal": lambda: m.focal[n]}[term]()
            return lookup

        def row(m, *idx):
            idx = idx if foreach == "arcs" else idx[0]
            look = lookup_for(m, idx)
            left, right = _evaluate(lhs, look), _evaluate(rhs, look)
            if sense == "<=":
                return left <= right
            if sense == ">=":
                return left >= right
            return left == right

        return pyo.Constraint(pyo.Set(initialize=rows, dimen=2 if foreach == "arcs" else 1),
                              rule=row) if rows else pyo.Constraint(pyo.Set(initialize=[]),
                                                                    rule=row)

    rule.__name__ = name
    rule.__signature__ = inspect.Signature(
        [inspect.Parameter("m", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [inspect.Parameter(p, inspect.Parameter.KEYWORD_ONLY) for p in spec.parameters])
    return ConstraintFamily(name, spec.title, cases, rule, dict(spec.parameters), "t",
                            f"{origin}: constraints.{name}", text)


def scenario_families(extensions: Sequence[str], constraints: Mapping[str, object],
                      base: Path | None, where, origin: str = "<scenario>"
                      ) -> tuple[list[Extension], list[ConstraintFamily]]:
    """Every family a scenario declares: its extensions' and its YAML constraints', in order;
    ``where(key)`` gives the file:line prefix of a key."""
    loaded = [load_extension(ref, base, where(("extensions", i)))
              for i, ref in enumerate(extensions)]
    fams = [f for e in loaded for f in e.families]
    for name, spec in constraints.items():
        fams.append(yaml_family(name, spec, where(("constraints", name)), origin))
    seen: dict[str, ConstraintFamily] = {}
    for f in fams:
        if f.name in seen:
            raise ScenarioError(f"{where(('constraints',) if f.text else ('extensions',))}: two "
                                f"constraint families are named {f.name!r} ({seen[f.name].source}"
                                f" and {f.source})")
        seen[f.name] = f
    return loaded, fams

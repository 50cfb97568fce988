"""The LP's mathematics as Markdown, generated from the model's own declarations.

``lp.SYMBOLS`` declares every set, parameter and variable; each constraint family's equation is
the first line of the docstring of the function that states it. The README's "The LP" section is
this text for the core families (``chokepoint math`` prints it; a test fails when the README
drifts from it); ``chokepoint math SCENARIO.yaml`` adds the scenario's own families.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..cases import CASES, Case
from ..lp import CORE_FAMILIES, SYMBOLS, ConstraintFamily, formulations
from ..lp.families import FLOW

BEGIN = "<!-- BEGIN GENERATED MATH: chokepoint math -->"
END = "<!-- END GENERATED MATH -->"
KIND = {"bounds": "bound", "rows": "rows", "definition": "definition"}


def _family(f, parameters: Mapping[str, float],
            rows: Mapping[str, int] | None = None) -> list[str]:
    cases = ", ".join(c.value for c in Case if c in f.cases)
    extra = " (built only for band narrowing)" if getattr(f, "optional", False) else ""
    values = ""
    if f.user and f.parameters:
        from ..lp.families import parameter_text

        values = "; parameters: " + parameter_text(f, parameters, "`{p}` = {v:g}")
    if rows is not None:
        values += "; rows: " + ", ".join(f"{m} {n}" for m, n in rows.items())
    kind = "user rows" if f.user else KIND[f.kind]
    return [f"- `{f.name}` ({f.title}; {kind}; in: {cases}{extra}{values}): {f.description}",
            "", f"  $${f.equation}$$", ""]


def families_markdown(families: Sequence[ConstraintFamily],
                      parameters: Mapping[str, float] | None = None,
                      rows: Mapping[str, Mapping[str, int]] | None = None) -> str:
    """User families as ``chokepoint math`` states them (equation generated from what was
    parsed, selection in words, rows per network): for the docs' examples."""
    out = []
    for f in families:
        out += _family(f, parameters or {}, (rows or {}).get(f.name))
    return "\n".join(out) + "\n"


def math_markdown(families: Sequence[ConstraintFamily] = (),
                  parameters: Mapping[str, float] | None = None,
                  rows: Mapping[str, Mapping[str, int]] | None = None) -> str:
    """The LP as Markdown: symbols, objective, every family, and each case's formulation;
    ``rows`` (family -> network -> count) says how many rows a YAML family states where."""
    parameters = dict(parameters or {})
    out = [BEGIN, ""]
    for kind, head in (("set", "Sets"), ("param", "Parameters"), ("var", "Variables")):
        out += [f"**{head}**", "", "| symbol | name | unit | meaning |", "|---|---|---|---|"]
        for s in SYMBOLS.values():
            if s.kind == kind:
                out.append(f"| ${s.latex}$ | `{s.name}` | {s.unit} | {s.title}: {s.description} |")
        out.append("")
    out += [
        "**Objective** (`objective`), for product sink $k$ (weights $w_a = 1$ on arcs into $k$):",
        "",
        r"$$\mathrm{VI}_k = \frac{\sum_{a \in A^{P}} w_a x_a}{\sum_{a \in A^{P}} w_a v_a}$$",
        "",
        "**Constraint families.** The bound cases have the touched flow $x_a$ of every arc as "
        "variables, with capacity $0 \\le x_a \\le v_a$; the proportional case has the touched "
        "share $0 \\le s_n \\le 1$ of every interior node, and $x_a$ is an expression of the "
        "shares. A *bound* family bounds the variable (reset for each focal set); a *rows* "
        "family adds one row per node or source named in its equation. $\\mathrm{src}(a)$, "
        "$\\mathrm{tgt}(a)$ are an arc's ends.",
        "",
    ]
    for f in CORE_FAMILIES.values():
        out += _family(f, parameters)
    if families:
        out += ["**User families** (the scenario's extensions and constraints)", ""]
        for f in families:
            out += _family(f, parameters, (rows or {}).get(f.name))
    out += ["**Cases**: each case's model holds only its families; cases with the same "
            "families share one model", "",
            "| case | sense | variables | families |", "|---|---|---|---|"]
    forms = formulations(tuple(Case), families)
    for case, spec in CASES.items():
        f = forms[case]
        fams = ", ".join(f"`{x.name}`" for x in f.families)
        var = "$x_a$ (arcs)" if f.layout == FLOW else "$s_n$ (interior nodes)"
        out.append(f"| `{case.value}` | {spec.sense} | {var} | {fams} |")
    out += ["", END]
    return "\n".join(out) + "\n"


# -- the scenario reference, from the schema ----------------------------------------------------


def _type_text(annotation) -> str:
    import typing

    from ..lp.yaml_families import Parameter

    if annotation == dict[str, Parameter]:
        return "dict[str, float \\| indexed]"
    text = str(annotation).replace("typing.", "")
    text = text.replace("chokepoint.lp.yaml_families.", "")
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in typing.get_args(annotation))
    if isinstance(annotation, type):
        return annotation.__name__
    return text.replace("|", "\\|").replace("chokepoint.lp.extensions.", "").replace(
        "chokepoint.runs.scenario.", "")


def _model_table(model, prefix: str) -> list[str]:
    from pydantic_core import PydanticUndefined

    out = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        if field.default is PydanticUndefined and field.default_factory is None:
            default = "**required**"
        else:
            value = field.default_factory() if field.default_factory else field.default
            default = f"`{value}`" if value not in (None, "", [], {}) else "-"
        desc = (field.description or "").replace("\n", " ").replace("|", "\\|")
        out.append(f"| `{key}` | {_type_text(field.annotation)} | {default} | {desc} |")
    return out


def scenario_reference() -> str:
    """Every key of a scenario file, with type, default and meaning, from the schema."""
    from ..lp.yaml_families import ConstraintSpec, EquationSpec, IndexedSpec
    from ..runs.scenario import NetworkSpec, ScenarioSpec, SensitivitySpec, UncertainFraction
    from ..statistics import counterfactual as cf

    out = ["### Top level", ""] + _model_table(ScenarioSpec, "") + [""]
    for title, model, prefix in (("network", NetworkSpec, "network."),
                                 ("sensitivity", SensitivitySpec, "sensitivity."),
                                 ("sensitivity.parameters[]", UncertainFraction, ""),
                                 ("constraints.NAME", ConstraintSpec, ""),
                                 ("constraints.NAME.equations[]", EquationSpec, ""),
                                 ("constraints.NAME.parameters.P (indexed)", IndexedSpec, "")):
        out += [f"### `{title}`", "", model.__doc__.strip().splitlines()[0], ""]
        out += _model_table(model, prefix) + [""]
    out += ["### `edits[]`", "", "Each edit is a mapping with a `kind`:", ""]
    for kind in cf.EDIT_KINDS:
        model = {"scale_production": cf.ScaleProduction, "move_production": cf.MoveProduction,
                 "recycling": cf.Recycling, "scale_trade": cf.ScaleTrade,
                 "set_fraction": cf.SetFraction}[kind]
        out += [f"#### `{kind}`", ""] + _model_table(model, "") + [""]
    return "\n".join(out) + "\n"

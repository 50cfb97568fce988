"""The LP's mathematics as Markdown, generated from the model's own registry.

``lp.SYMBOLS`` declares every set, parameter and variable; each constraint family's equation is
the docstring of the function that builds it. The README's "The LP" section is this text
(``chokepoint math`` prints it; a test fails when the README drifts from it).
"""

from __future__ import annotations

from .cases import CASES, Case
from .lp import FAMILIES, SYMBOLS

BEGIN = "<!-- BEGIN GENERATED MATH: chokepoint math -->"
END = "<!-- END GENERATED MATH -->"


def math_markdown() -> str:
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
        "**Constraint families** (capacity $0 \\le x_a \\le v_a$ is the bound of $x_a$; "
        "$\\mathrm{src}(a)$, $\\mathrm{tgt}(a)$ are an arc's ends; $y$ is the family's own "
        "switch $y_k$, so every family stays in the matrix and a case only changes bounds)",
        "",
    ]
    for f in FAMILIES.values():
        cases = ", ".join(c.value for c in Case if c in f.cases)
        out += [f"- `{f.name}` ({f.title}; $y = 1$ in: {cases}): {f.description}", "",
                f"  $${f.equation}$$", ""]
    out += ["**Cases**: which families are switched on and which way the objective goes", "",
            "| case | sense | families |", "|---|---|---|"]
    for case, spec in CASES.items():
        fams = ", ".join(f"`{f.name}`" for f in FAMILIES.values() if case in f.cases)
        out.append(f"| `{case.value}` | {spec.sense} | {fams} |")
    out += ["", END]
    return "\n".join(out) + "\n"

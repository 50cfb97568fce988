"""One index's LP as a file any LP solver reads (free MPS, or CPLEX LP).

Every file **minimises**: free MPS has no portable way to say "maximise" (glpsol rejects the
``OBJSENSE`` section that HiGHS and cbc read, and reads a quoted ``NAME`` as two words), so a
maximising case (pessimistic A and B, proportional) is written as the minimisation of minus
its objective, and the problem's name is one word. Comment lines at the top of the file say
what the objective is and how it turns into the index; :func:`index_of` is that rule.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

from ..cases import Case

#: The comment marker of each format's lines (free MPS: '*' in column 1; LP: a backslash).
COMMENT = {"mps": "*", "lp": "\\"}


def index_of(objective: float, sense: str, supply: float) -> float:
    """The index from a file's optimal objective: ``-objective / supply`` where the case
    maximises (the file minimises minus it), ``objective / supply`` where it minimises."""
    return (-objective if sense == "maximize" else objective) / supply


def lp_text(lp, case: Case, nodes: Iterable[str], product: str, fmt: str, name: str,
            about: Iterable[str] = ()) -> tuple[str, dict]:
    """The text of the LP of one index (the formulation ``lp`` builds for ``case``, the focal
    ``nodes`` and ``product``, in tonnes) and what turns its optimum into the index: sense of
    the case, the product's supply. ``about`` lines are added to the comment block."""
    import pyomo.environ as pyo
    from pyomo.opt import ProblemFormat

    model = lp.model(case, nodes, product)
    sense = case.spec.sense
    if sense == "maximize":
        model.objective.expr = -model.objective.expr
        model.objective.sense = pyo.minimize
    # a row whose bounds are equal is written as one equality, not as the pair of rows
    # Pyomo writes for bounds held in mutable parameters: glpsol's presolver (on by default)
    # returned infeasible "optimal" points on 7 of the paper grid's 200 LPs written as pairs
    for con in model.component_data_objects(pyo.Constraint, active=True):
        lo, up = pyo.value(con.lower), pyo.value(con.upper)
        if lo is not None and up is not None and lo == up:
            con.set_value(con.body == lo)
        elif lo is not None or up is not None:
            con.set_value((lo, con.body, up))  # bounds as numbers: no parameter left
    # free MPS and LP names are single words
    model.name = re.sub(r"[^A-Za-z0-9_.+-]", "_", name)
    supply = lp.network.product_supply(product)
    with tempfile.TemporaryDirectory(prefix="chokepoint-lp-") as tmp:
        path = Path(tmp) / f"model.{fmt}"
        options = {"symbolic_solver_labels": True}
        if fmt == "mps":
            options["skip_objective_sense"] = True  # minimisation is every reader's default
        model.write(str(path), format={"mps": ProblemFormat.mps,
                                       "lp": ProblemFormat.cpxlp}[fmt], io_options=options)
        body = path.read_text(encoding="utf-8")
    what = ("minus the touched tonnes into the product (the case maximises them; this file "
            "minimises minus them)" if sense == "maximize" else
            "the touched tonnes into the product (the case minimises them)")
    rule = ("index = -objective / supply" if sense == "maximize" else
            "index = objective / supply")
    c = COMMENT[fmt]
    head = [f"{c} chokepoint: {name}", *(f"{c} {line}" for line in about),
            f"{c} objective: {what}",
            f"{c} product supply: {supply:.17g} t; {rule}",
            f"{c} a minimisation in tonnes; read it as free MPS (glpsol --freemps)"
            if fmt == "mps" else f"{c} a minimisation in tonnes (CPLEX LP format)"]
    return "\n".join(head) + "\n" + body, {"sense": sense, "supply_t": supply}

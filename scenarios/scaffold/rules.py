"""Your own constraint families, in Python (loaded by `extensions: [rules.py]` in scenario.yaml).

A family is a named physical rule: a function that gets the case's Pyomo model `m` and returns
a `pyo.Constraint`. What `m` holds (sets, data, `m.owner[n]`, `m.stage[n]`, `m.focal[n]`,
`m.touched[a]`, `m.network`, ...) is listed in docs/extending.md; `chokepoint math
scenario.yaml` prints this family's equation beside the core ones.
"""

import pyomo.environ as pyo

import chokepoint


# The decorator names the family (its function's name), gives it a title and declares its
# parameters with their defaults; scenario.yaml may set them (`parameters:`), sweep them or
# switch the family off (`families: {cross_border_refined: false}`). It applies to the three
# bounds (optimistic, pessimistic A and B) unless `cases=[...]` says otherwise.
@chokepoint.constraint_family("Refined material crossing a border", parameters={"share": 0.5})
def cross_border_refined(m, share):
    r"""x_a \le v_a (f_{\mathrm{src}(a)} + \sigma) \quad \forall a \in A^{\mathrm{cross}}
    Refined material a refiner ships to another country's cathode makers (the arcs
    A^cross) is touched on at most a share of its tonnage, unless the refiner is focal."""
    # select by what each node is (owner, stage), never by parsing node names
    arcs = [(s, t) for s, t in m.arcs
            if m.stage[s] == "refining" and m.stage[t] == "cathode_pool"
            and m.owner[s] != m.owner[t]]
    return pyo.Constraint(
        arcs, rule=lambda m, s, t: m.touched[s, t] <= m.tonnes[s, t] * (m.focal[s] + share))

"""Rankings: every country of a year's networks (and optionally every bloc) as a focal set."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from ..cases import Case
from ..chemistry import DEFAULT_PAIRS, pair_key, pair_label, parse_pair
from ..focal import FocalSet, parse_focal
from ..index import AGGREGATE, compute
from ..lp import DEFAULT_SOLVER


def rank(year: int = 2020, profile: str = "paper", blocs: Mapping[str, dict] | None = None,
         solver: str = DEFAULT_SOLVER, progress: bool | None = None) -> pd.DataFrame:
    """Tidy ranking: focal, kind (country|bloc), chemistry, material, case, vi, rank.

    Rank 1 is the most exposing focal set for that pair and case (ties share the best rank).
    """
    from ..networks import build_networks, owners

    pairs = [parse_pair(p) for p in DEFAULT_PAIRS]
    nets = build_networks(sorted({p.material for p in pairs}), year, profile)
    countries = [o for o in owners(nets) if o != "Other"]
    focal = [FocalSet.of(o, [o]) for o in countries]
    kind = {o: "country" for o in countries}
    if blocs:
        spec = {name: {"bloc": name} for name in blocs}
        for fs in parse_focal(spec, owners(nets), where="blocs", blocs=blocs):
            focal.append(fs)
            kind[fs.label] = "bloc"
    ind = compute(nets, focal, pairs, tuple(Case), solver, decompose=False, progress=progress)
    df = ind.vulnerability
    df = df[df["material"] != AGGREGATE].copy()
    df.insert(1, "kind", df["focal"].map(kind))
    df["rank"] = (df.groupby(["kind", "chemistry", "material", "case"], observed=True)["vi"]
                  .rank(ascending=False, method="min").astype(int))
    df["kind"] = pd.Categorical(df["kind"], ["country", "bloc"])
    df["order"] = [pair_key(c, m) for c, m in zip(df["chemistry"], df["material"])]
    df["case_order"] = df["case"].map({c.value: i for i, c in enumerate(Case)})
    df = df.sort_values(["kind", "order", "case_order", "rank"], ignore_index=True)
    return df.drop(columns=["order", "case_order"])


def render(df: pd.DataFrame, top: int = 10) -> str:
    """Per pair: the ``top`` focal sets by the proportional index, with every case."""
    out = []
    cases = [c.value for c in Case]
    for (kind, chem, mat), block in df.groupby(["kind", "chemistry", "material"], sort=False,
                                                observed=True):  # already in the paper's order
        wide = block.pivot_table(index="focal", columns="case", values="vi")[cases] * 100
        wide = wide.sort_values(["proportional", "pessimistic_a"], ascending=False).head(top)
        kinds = {"country": "countries", "bloc": "blocs"}[kind]
        out.append(f"{pair_label(chem, mat)}, {kinds} ranked by the proportional index (% of "
                   f"cathode output; top {min(top, len(wide))} of {block['focal'].nunique()})")
        out.append(f"  {'rank':>4}  {'focal':<28}" + "".join(f"{c:>15}" for c in cases))
        for i, (name, row) in enumerate(wide.iterrows(), 1):
            out.append(f"  {i:>4}  {name[:28]:<28}" + "".join(f"{row[c]:>15.1f}" for c in cases))
        out.append("")
    return "\n".join(out)

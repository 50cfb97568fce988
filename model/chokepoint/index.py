"""The vulnerability index over focal sets, chemistry-material pairs and cases.

VI = touched tonnes into the product sink / observed tonnes into it. A chemistry's index is the
maximum over its materials in each case (the scarcest input binds). The stage decomposition counts
the focal set at the cathode stage only, then cathode + refining, then every stage.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from . import phases
from .cases import Case
from .chemistry import AGGREGATE, Pair
from .errors import NetworkError, SolverError
from .focal import ALL_STAGES, STAGE_STEPS, FocalSet
from .lp import DEFAULT_SOLVER, ConstraintFamily, SolveFailed, VulnerabilityLP
from .network import Network

FULL = "all stages"  # the focal set counted at every stage it was given


@dataclass
class Timings:
    """Wall-clock seconds: LP build per material, and every solve (a formulation's engine is
    built at its first solve, which is counted there)."""

    build: dict[str, float] = field(default_factory=dict)
    solves: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: one per index and stage step: (focal, chemistry, material, case, step, seconds, engine,
    #: iterations); seconds None where no LP was solved for it (its focal set owns no node of
    #: the network, or the same nodes as a focal set solved before: the engine field says which)
    indices: list[tuple] = field(default_factory=list)


@dataclass
class Indices:
    """Tidy results: ``vulnerability`` (focal, chemistry, material, case, vi) and ``stages``
    (focal, chemistry, material, case, stage, vi_cumulative); vi are fractions in [0, 1]."""

    vulnerability: pd.DataFrame
    stages: pd.DataFrame
    timings: Timings


def compute(
    networks: Mapping[str, Network],
    focal_sets: Sequence[FocalSet],
    pairs: Sequence[Pair],
    cases: Iterable[Case] = tuple(Case),
    solver: str = DEFAULT_SOLVER,
    decompose: bool = True,
    progress: bool | None = None,
    families: Sequence[ConstraintFamily] = (),
    parameters: Mapping[str, float] | None = None,
    options: Mapping[str, object] | None = None,
    lps: dict | None = None,
    blocs: Mapping[str, Mapping] | None = None,
    workers: int = 1,
) -> Indices:
    """Every index of the grid. ``networks`` maps material name -> network; ``families`` are
    users' constraint families with ``parameters`` (``family.parameter -> value``);
    ``options`` go to the solver; ``blocs`` (name -> {countries}) are what users' rules
    read as ``m.blocs``; ``workers`` processes may answer questions side by side where that
    pays (:meth:`VulnerabilityLP.prefetch`). ``lps`` (material -> VulnerabilityLP), when
    given, keeps the built LPs for the next call on the same networks (a new parameter value
    re-solves without a rebuild)."""
    cases = list(cases)
    # The index itself counts every stage of the focal set (FULL); the decomposition's steps
    # count it from the cathode stage upstream. On the paper's networks the last step and FULL
    # own the same nodes, so the cache below solves them once.
    steps = (STAGE_STEPS if decompose else ()) + ((FULL, ALL_STAGES),)
    timings = Timings()
    rows: list[tuple] = []
    by_material: dict[str, list[Pair]] = {}
    for p in pairs:
        by_material.setdefault(p.material, []).append(p)
    for material, mpairs in by_material.items():
        net = networks[material]
        for p in mpairs:
            net.require_product(p.chemistry)
            if net.product_supply(p.chemistry) <= 0:
                raise NetworkError(f"{net.origin}: product {p.chemistry} receives no flow")
    total = sum(len(v) for v in by_material.values()) * len(cases) * len(focal_sets) * len(steps)
    # progress=None: a bar only when stderr is a terminal (tqdm's own rule)
    bar = tqdm(total=total, desc="indices", unit="index", leave=False,
               disable=None if progress is None else not progress)
    for material, mpairs in by_material.items():
        net = networks[material]
        t0 = time.perf_counter()
        lp = (lps or {}).get(material)
        if lp is None or lp.network is not net:
            lp = VulnerabilityLP(net, solver, families, parameters, options, blocs=blocs)
            if lps is not None:
                lps[material] = lp
        else:
            lp.set_parameters(parameters or {})
        timings.build[material] = time.perf_counter() - t0
        nodes_of = {}
        for fs in focal_sets:
            for step, stages in steps:
                nodes_of[fs.label, step] = fs.restricted(stages).nodes(net)
        questions = dict.fromkeys((nodes, p.chemistry, case) for case in cases for p in mpairs
                                  for nodes in nodes_of.values() if nodes)
        solving = lp.prefetch(questions, workers)  # wall seconds of this material's solves
        for case in cases:  # case-major: constraint families switch once per case
            for p in mpairs:
                supply = net.product_supply(p.chemistry)
                solved: dict[frozenset, float] = {}
                first: dict[frozenset, str] = {}
                for fs in focal_sets:
                    for step, _ in steps:
                        nodes = nodes_of[fs.label, step]
                        key = (fs.label, p.chemistry, material, case.value, step)
                        if nodes not in solved:
                            t = time.perf_counter()
                            solved[nodes] = _solve(lp, nodes, p, case, fs, step) if nodes \
                                else 0.0
                            seconds = time.perf_counter() - t
                            solving += seconds
                            ahead = lp.last_seconds() if nodes else None
                            seconds = seconds if ahead is None else ahead  # its own time
                            timings.solves.append(seconds)
                            first[nodes] = fs.label
                            timings.indices.append((*key, seconds, *lp.last_solve()) if nodes
                                                   else (*key, None, "no focal node", None))
                        else:
                            timings.indices.append((*key, None, "no focal node" if not nodes
                                                    else f"same LP as {first[nodes]}", None))
                        vi = float(np.clip(solved[nodes] / supply, 0.0, 1.0))
                        rows.append((fs.label, p.chemistry, material, case.value, step, vi))
                        bar.update()
        timings.notes += [n for n in lp.notes if n not in timings.notes]
        # the engines were built at their first solves: count them as building
        phases.add("build", timings.build[material] + lp.engine_seconds)
        phases.add("solve", solving - lp.engine_seconds)
        lp.engine_seconds = 0.0
    bar.close()
    stages = pd.DataFrame(rows, columns=["focal", "chemistry", "material", "case", "stage",
                                         "vi_cumulative"])
    stages = _with_aggregates(stages, "vi_cumulative", ["focal", "chemistry", "case", "stage"])
    full = stages[stages["stage"] == FULL].drop(columns="stage")
    vulnerability = full.rename(columns={"vi_cumulative": "vi"}).reset_index(drop=True)
    stages = stages[stages["stage"] != FULL]
    return Indices(vulnerability, stages.reset_index(drop=True), timings)


def _solve(lp: VulnerabilityLP, nodes, pair: Pair, case: Case, fs: FocalSet, step: str) -> float:
    try:
        return lp.solve(nodes, pair.chemistry, case)
    except SolveFailed as e:
        where = f"focal set {fs.label!r}" + ("" if step == FULL else
                                             f" counted up to {step} (stage decomposition)")
        user = [_described(f, lp.parameters) for f in lp.formulations[case].user]
        why = lp.diagnose(nodes, pair.chemistry, case, e.status)
        raise SolverError(
            f"solver {lp.solver_name!r} returned status {e.status} for {where}, pair {pair}, "
            f"case {case.value}, user families: {', '.join(user) or 'none'}; {why}") from None


def _described(family: ConstraintFamily, parameters: Mapping[str, float]) -> str:
    """``name(p=value, ...)``."""
    from .lp.families import parameter_text

    return f"{family.name}({parameter_text(family, parameters)})"


def _with_aggregates(df: pd.DataFrame, value: str, keys: list[str]) -> pd.DataFrame:
    """Append each chemistry's maximum over its materials as material ``all``."""
    multi = df.groupby(["chemistry"])["material"].nunique()
    chems = multi[multi > 1].index
    agg = (df[df["chemistry"].isin(chems)].groupby(keys, sort=False, as_index=False)[value].max()
           .assign(material=AGGREGATE))
    return pd.concat([df, agg[df.columns]], ignore_index=True)

"""Sweeps: a scenario's variants (cartesian product or explicit list) and sensitivity samples,
run in this process, a local process pool, or a Dask cluster, with resumable partial results.

A task is one variant and a chunk of its samples. Each finished task is saved under a hidden
``.<name>.parts`` folder beside the output; a re-run with the same scenario skips what is there.
Results are assembled in task order, so they are identical however the tasks ran.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import pickle
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import ChokepointError, ScenarioError, did_you_mean
from .scenario import Scenario, ScenarioSpec, set_dotted

#: Dotted scenario keys a sweep or variant may set.
SWEEPABLE = ("network.year", "network.profile", "network.flows", "network.close_imbalances",
             "solver", "solver_options", "pairs", "cases", "edits", "stage_contributions",
             "focal", "extensions", "constraints", "parameters", "families")
#: Keys under which a sweep may set one entry: ``parameters.FAMILY.PARAM``, ``families.NAME``,
#: ``constraints.NAME``, ``solver_options.OPTION``.
SWEEPABLE_PREFIXES = ("parameters.", "families.", "constraints.", "solver_options.")


def sweepable(key: str) -> bool:
    return key in SWEEPABLE or (key.startswith(SWEEPABLE_PREFIXES)
                                and len(key.split(".", 1)[1]) > 0)


@dataclass(frozen=True)
class Variant:
    """One point of a sweep: its label, the values it sets (as text, and as given) and its
    full spec."""

    index: int
    label: str
    coords: dict[str, str]
    spec: ScenarioSpec
    values: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Parameter:
    """One uncertain quantity: an HS code's contained fraction or a chemistry's mass fraction
    (sampled as a factor on its value), or a constraint family's parameter (``family``, sampled
    as a value; ``central`` is the scenario's)."""

    name: str
    code: str | None
    chemistry: str | None
    material: str | None
    low: float
    high: float
    distribution: str
    family: str | None = None
    central: float = 1.0

    def edit(self, factor: float) -> dict:
        if self.code is not None:
            return {"kind": "set_fraction", "code": self.code, "factor": factor}
        return {"kind": "set_fraction", "chemistry": self.chemistry,
                "material": self.material, "factor": factor}


@dataclass
class Samples:
    """Sample 0 is the central point (every factor 1); samples 1..n are drawn."""

    parameters: list[Parameter] = field(default_factory=list)
    factors: np.ndarray = field(default_factory=lambda: np.ones((1, 0)))

    def __len__(self) -> int:
        return len(self.factors)


def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def variants(scenario: Scenario) -> list[Variant]:
    """The scenario's variants: the product of ``sweep``, the ``variants`` list, or itself."""
    spec = scenario.spec
    base = spec.model_dump(by_alias=True, exclude={"sweep", "variants", "sensitivity"},
                           exclude_none=True)
    points: list[tuple[str | None, dict]] = []
    for key in list(spec.sweep) + [k for v in spec.variants for k in v if k != "label"]:
        if not sweepable(key):
            where = scenario.where(("sweep", key) if key in spec.sweep else ("variants",))
            raise ScenarioError(f"{where}: {key!r} cannot be swept"
                                f"{did_you_mean(key, SWEEPABLE)}; sweepable: "
                                f"{', '.join(SWEEPABLE)}, and one entry of "
                                f"{', '.join(p + '*' for p in SWEEPABLE_PREFIXES)}")
    if spec.sweep:
        keys = list(spec.sweep)
        for values in itertools.product(*(spec.sweep[k] for k in keys)):
            points.append((None, dict(zip(keys, values))))
    for v in spec.variants:
        points.append((v.get("label"), {k: x for k, x in v.items() if k != "label"}))
    if not points:
        return [Variant(0, spec.name, {}, spec)]
    out = []
    for i, (label, setting) in enumerate(points):
        data = json.loads(json.dumps(base))
        for k, x in setting.items():
            set_dotted(data, k, x)
        where = scenario.where(("sweep",) if spec.sweep and label is None else ("variants", i))
        try:
            vspec = ScenarioSpec.model_validate(data)
        except Exception as e:  # pydantic's message, on one line, with the variant named
            first = str(e).splitlines()
            raise ScenarioError(f"{where}: variant {setting}: "
                                f"{' '.join(first[1:3]).strip() or first[0]}") from None
        coords = {k: _text(x) for k, x in setting.items()}
        label = label or ", ".join(f"{k}={c}" for k, c in coords.items())
        out.append(Variant(i, label, coords, vspec, dict(setting)))
    return out


def samples(spec: ScenarioSpec, inputs_codes: dict[str, list[str]],
            central: dict[str, float] | None = None, where=None) -> Samples:
    """Seeded factors (fractions) and values (family parameters) for the sensitivity
    parameters (rows: samples, columns: parameters); ``central`` holds the scenario's values
    of the families' parameters."""
    sens = spec.sensitivity
    if sens is None:
        return Samples()
    central = central or {}
    params: list[Parameter] = []
    for i, p in enumerate(sens.parameters):
        lo, hi = p.range
        if p.parameter is not None:
            if p.parameter not in central:
                at = where(("sensitivity", "parameters", i, "parameter")) if where else \
                    "sensitivity.parameters"
                raise ScenarioError(f"{at}: {p.parameter!r} is no parameter of an active "
                                    f"family{did_you_mean(p.parameter, list(central))}; "
                                    f"declared: {', '.join(central) or 'none'}")
            c = central[p.parameter]
            if p.distribution == "triangular" and not lo <= c <= hi:
                at = where(("sensitivity", "parameters", i, "range")) if where else \
                    "sensitivity.parameters"
                raise ScenarioError(f"{at}: a triangular range must hold the central value "
                                    f"{c:g} of {p.parameter}")
            params.append(Parameter(f"parameter_{p.parameter}", None, None, None, lo, hi,
                                    p.distribution, family=p.parameter, central=c))
        elif p.code is not None:
            params.append(Parameter(f"code_{p.code}", p.code, None, None, lo, hi,
                                    p.distribution))
        elif p.chemistry is not None:
            params.append(Parameter(f"{p.chemistry}_{p.material}", None, p.chemistry,
                                    p.material, lo, hi, p.distribution))
        else:
            codes = inputs_codes.get(p.material)
            if not codes:
                raise ScenarioError(f"sensitivity.parameters: unknown material {p.material!r}"
                                    f"{did_you_mean(p.material, list(inputs_codes))}")
            params += [Parameter(f"code_{c}", c, None, None, lo, hi, p.distribution)
                       for c in codes]
    d, n = len(params), sens.samples
    if sens.method == "grid":
        axes = [np.linspace(0.0, 1.0, n) if n > 1 else np.array([0.5])] * d
        u = np.array(list(itertools.product(*axes)))
    elif sens.method == "lhs":
        from scipy.stats import qmc

        u = qmc.LatinHypercube(d=d, seed=sens.seed).random(n)
    else:
        u = np.random.default_rng(sens.seed).random((n, d))
    factors = np.empty_like(u)
    for j, p in enumerate(params):
        peak = p.central if p.family else 1.0
        if p.distribution == "triangular" and p.high > p.low:
            from scipy.stats import triang

            factors[:, j] = triang.ppf(u[:, j], c=(peak - p.low) / (p.high - p.low), loc=p.low,
                                       scale=p.high - p.low)
        else:
            factors[:, j] = p.low + u[:, j] * (p.high - p.low)
    first = np.array([[p.central if p.family else 1.0 for p in params]])
    return Samples(params, np.vstack([first.reshape(1, d), factors]))


# -- one task -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    variant: int
    spec_json: str  # the variant's spec
    base_dir: str | None  # the scenario's folder (relative paths)
    blocs: dict
    sample_ids: tuple[int, ...]  # empty: no sensitivity
    factors: tuple[tuple[float, ...], ...]
    parameters: tuple[Parameter, ...]
    extensions: tuple[str, ...] = ()  # SHA-256 of each extension, in the spec's order
    scenario_name: str = "scenario.yaml"

    @property
    def key(self) -> str:
        first = self.sample_ids[0] if self.sample_ids else 0
        return f"v{self.variant:04d}-s{first:07d}"


@lru_cache(maxsize=4)
def _inputs(year: int):
    from .inputs import Inputs

    inputs = Inputs.load(year)
    inputs.trade_table  # noqa: B018 -- read once per process; every task reuses it
    return inputs


def task_scenario(task: Task) -> Scenario:
    """The task's scenario, its extensions loaded as the run started (same SHA-256)."""
    from .lp.extensions import load_extension

    spec = ScenarioSpec.model_validate_json(task.spec_json)
    base = Path(task.base_dir) if task.base_dir else None
    scenario = Scenario(spec, base / task.scenario_name if base else None, {})
    for i, (ref, sha) in enumerate(zip(spec.extensions, task.extensions)):
        load_extension(ref, base, f"extensions[{i}]", sha256=sha)
    return scenario


def run_task(task: Task) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Indices of one variant (and its samples): vulnerability and stage rows, labelled."""
    from pydantic import TypeAdapter

    from .counterfactual import Edit, apply_edits
    from .focal import parse_focal
    from .index import compute
    from .networks import build_from_inputs, load_networks, owners

    scenario = task_scenario(task)
    spec = scenario.spec
    families, parameters, _ = scenario.user_families()
    materials = scenario.materials
    runs: list[tuple[int | None, list, dict]] = []
    for sample, fs in zip(task.sample_ids, task.factors) if task.sample_ids else []:
        edits = [TypeAdapter(Edit).validate_python(p.edit(f))
                 for p, f in zip(task.parameters, fs) if p.family is None]
        values = {p.family: f for p, f in zip(task.parameters, fs) if p.family is not None}
        runs.append((sample, edits, values))
    if not runs:
        runs = [(None, [], {})]
    vul, stages = [], []
    flows = scenario.flows_dir()
    base = None
    if flows is None:
        base = apply_edits(_inputs(spec.network.year), spec.edits)
    networks, lps = None, {}
    for sample, edits, values in runs:
        if networks is None or edits:  # only edits of the statistics rebuild the networks
            if flows is not None:
                networks = load_networks(flows, materials, spec.network.year,
                                         spec.network.close_imbalances)
            else:
                inputs = apply_edits(base, edits, where="sensitivity")
                networks = build_from_inputs(materials, inputs, spec.network.profile)
            focal = parse_focal(spec.focal, owners(networks), blocs=task.blocs)
        ind = compute(networks, focal, scenario.pairs, scenario.cases, spec.solver,
                      decompose=spec.stage_contributions, progress=False, families=families,
                      parameters={**parameters, **values}, options=spec.solver_options,
                      lps=lps)
        for df, out in ((ind.vulnerability, vul), (ind.stages, stages)):
            df = df.copy()
            df.insert(0, "sample", -1 if sample is None else sample)
            df.insert(0, "variant", task.variant)
            out.append(df)
    return pd.concat(vul, ignore_index=True), pd.concat(stages, ignore_index=True)


# -- many tasks -----------------------------------------------------------------------------


def fingerprint(tasks: Sequence[Task]) -> str:
    h = hashlib.sha256()
    for t in tasks:
        h.update(pickle.dumps((t.spec_json, t.sample_ids, t.factors, t.parameters, t.blocs,
                               t.extensions)))
    return h.hexdigest()[:16]


class PartStore:
    """Finished tasks under ``.<out>.parts/``; discarded when the sweep changes."""

    def __init__(self, out_dir: Path, tasks: Sequence[Task]):
        self.dir = out_dir.parent / f".{out_dir.name}.parts"
        stamp = fingerprint(tasks)
        if (self.dir / "fingerprint").is_file() and \
                (self.dir / "fingerprint").read_text() != stamp:
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "fingerprint").write_text(stamp)

    def path(self, task: Task) -> Path:
        return self.dir / f"{task.key}.pkl"

    def done(self, task: Task) -> bool:
        return self.path(task).is_file()

    def save(self, task: Task, result) -> None:
        tmp = self.path(task).with_suffix(".tmp")
        tmp.write_bytes(pickle.dumps(result))
        os.replace(tmp, self.path(task))  # a part is there whole or not at all

    def load(self, task: Task):
        return pickle.loads(self.path(task).read_bytes())

    def clear(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


#: Samples per task: enough to amortise a task's start, few enough to balance the workers.
#: Fixed (not derived from the worker count) so that a resumed run finds the same tasks.
SAMPLES_PER_TASK = 50


def make_tasks(scenario: Scenario, blocs: dict) -> tuple[list[Variant], Samples, list[Task]]:
    from .chemistry import MATERIALS

    vs = variants(scenario)
    codes: dict[str, list[str]] = {}
    if scenario.spec.sensitivity is not None and any(
            p.parameter is None for p in scenario.spec.sensitivity.parameters):
        inputs = _inputs(scenario.spec.network.year)
        codes = {m: [c for stage in inputs.materials["trade_codes"].get(m, {}).values()
                     for c in stage] for m in MATERIALS}
    _, central, _ = scenario.user_families()
    smp = samples(scenario.spec, codes, central, scenario.where)
    base_dir = str(scenario.path.parent.resolve()) if scenario.path else None
    name = scenario.path.name if scenario.path else "scenario.yaml"
    tasks = []
    for v in vs:
        js = v.spec.model_dump_json(by_alias=True)
        sub = Scenario(v.spec, scenario.path, scenario._lines)
        _, _, loaded = sub.user_families()  # every variant's families load before any task
        shas = tuple(e.sha256 for e in loaded)
        if scenario.spec.sensitivity is None:
            tasks.append(Task(v.index, js, base_dir, blocs, (), (), (), shas, name))
            continue
        n = len(smp)
        for start in range(0, n, SAMPLES_PER_TASK):
            ids = tuple(range(start, min(n, start + SAMPLES_PER_TASK)))
            tasks.append(Task(v.index, js, base_dir, blocs, ids,
                              tuple(tuple(map(float, smp.factors[i])) for i in ids),
                              tuple(smp.parameters), shas, name))
    return vs, smp, tasks


def execute(tasks: Sequence[Task], store: PartStore | None, workers: int = 1,
            dask: str | None = None, progress: bool | None = None) -> Iterator[tuple]:
    """Run the tasks not yet in ``store``; yields (task, result) as each finishes."""
    from tqdm.auto import tqdm

    todo = [t for t in tasks if store is None or not store.done(t)]
    bar = tqdm(total=len(tasks), initial=len(tasks) - len(todo), desc="sweep", unit="task",
               disable=None if progress is None else not progress, leave=False)
    try:
        if dask:
            yield from _finish(_run_dask(todo, dask), store, bar)
        elif workers <= 1 or len(todo) <= 1:
            yield from _finish(((t, lambda t=t: run_task(t)) for t in todo), store, bar)
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor, as_completed

            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                futures = {pool.submit(run_task, t): t for t in todo}
                yield from _finish(((futures[f], f.result) for f in as_completed(futures)),
                                   store, bar)
    finally:
        bar.close()


def _finish(finished, store, bar):
    """(task, result getter) as each finishes -> (task, result), each saved as a part."""
    for t, get in finished:
        r = get()
        if store:
            store.save(t, r)
        bar.update()
        yield t, r


def _run_dask(todo, address: str):
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ChokepointError("--dask needs Dask: pip install 'chokepoint[dask]'") from None
    cluster = None
    if address == "local":
        cluster = LocalCluster(n_workers=os.cpu_count() or 1, threads_per_worker=1,
                               processes=True, dashboard_address=None)
        client = Client(cluster)
    else:
        try:
            client = Client(address, timeout="10s")
        except (OSError, TimeoutError) as e:
            raise ChokepointError(f"--dask {address}: cannot reach the scheduler ({e})") from None
    try:
        futures = client.map(run_task, todo, pure=False)
        index = {f.key: t for f, t in zip(futures, todo)}
        for f in as_completed(futures):
            yield index[f.key], f.result
    finally:
        client.close()
        if cluster is not None:
            cluster.close()

"""Sweeps: a scenario's variants (cartesian product or explicit list) and sensitivity samples,
run in this process, a local process pool, or a Dask cluster, with resumable partial results.

A task is one variant and a chunk of its samples. It carries everything it reads, so a worker
needs chokepoint and nothing of the user's machine: the task itself holds the variant's spec
(YAML constraints included), blocs and samples; what tasks share is loaded once, here, and sent
once per worker (:func:`task_inputs`: each variant's networks, or the statistics its samples
edit, and each Python extension's content by its SHA-256). Each finished task is saved as a
part (:mod:`chokepoint.parts`) beside the output; a re-run with the same inputs skips what is
there. Results are assembled in task order, so they are identical however the tasks ran.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import pickle
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from concurrent.futures import CancelledError
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import ValidationError

from ..errors import STOP_SIGNAL, ChokepointError, ScenarioError, did_you_mean
from .scenario import Scenario, ScenarioSpec, set_dotted

log = logging.getLogger("chokepoint")

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


#: Names that already label every row of the tables and a dimension of results.nc.
LABELS = frozenset({"variant", "variant_label", "sample", "focal", "chemistry", "material",
                    "case", "stage", "vi", "vi_cumulative"})


def swept_name(key: str) -> str:
    """The column and coordinate of a swept key: the dotted key itself, or ``sweep.<key>``
    for a key that is already a label of every row (a sweep over ``focal``)."""
    return f"sweep.{key}" if key in LABELS else key


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


def _text(value, key: str = "") -> str:
    """A swept value as a label: a constraint family by its title, a switch as on/off, other
    values as given (mappings and lists as JSON)."""
    if key.startswith("constraints.") and isinstance(value, dict) and "title" in value:
        return str(value["title"])
    if isinstance(value, bool):
        return "on" if value else "off"
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
        except ValidationError as e:  # pydantic's messages, on one line, the variant named
            why = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}"
                            for err in e.errors())
            raise ScenarioError(f"{where}: variant {setting}: {why}") from None
        except Exception as e:  # a validator's own error, on one line
            first = str(e).splitlines()
            raise ScenarioError(f"{where}: variant {setting}: "
                                f"{' '.join(first[1:3]).strip() or first[0]}") from None
        coords = {k: _text(x, k) for k, x in setting.items()}
        label = label or ", ".join(f"{k}={c}" for k, c in coords.items())
        out.append(Variant(i, label, coords, vspec, dict(setting)))
    return out


#: Most samples a sensitivity run may draw (a grid's points per parameter, to the power of the
#: parameters): beyond this a run would take days, so validation stops it.
MAX_SAMPLES = 100_000


def samples(spec: ScenarioSpec, materials: dict | None = None,
            central: dict[str, float] | None = None, where=None) -> Samples:
    """Seeded factors (fractions) and values (family parameters) for the sensitivity
    parameters (rows: samples, columns: parameters). ``materials`` is the statistics'
    materials table (HS codes with their contained fractions, cathode mass fractions);
    ``central`` holds the scenario's values of the families' parameters."""
    sens = spec.sensitivity
    if sens is None:
        return Samples()
    central = central or {}
    materials = materials or {}
    codes_of = {m: {c: spec_.get("fraction") for stage in tables.values()
                    for c, spec_ in stage.items()}
                for m, tables in materials.get("trade_codes", {}).items()}
    fraction_of = {c: f for table in codes_of.values() for c, f in table.items()}
    mass = materials.get("cathode_mass_fractions", {})

    def at(i, *key):
        loc = ("sensitivity", "parameters", i, *key)
        return where(loc) if where else ".".join(map(str, loc))

    params: list[Parameter] = []
    for i, p in enumerate(sens.parameters):
        lo, hi = p.range
        if p.parameter is not None:
            if p.parameter not in central:
                raise ScenarioError(f"{at(i, 'parameter')}: {p.parameter!r} is no parameter of "
                                    f"an active family{did_you_mean(p.parameter, list(central))}"
                                    f"; declared: {', '.join(central) or 'none'}")
            c = central[p.parameter]
            if p.distribution == "triangular" and not lo <= c <= hi:
                raise ScenarioError(f"{at(i, 'range')}: a triangular range must hold the "
                                    f"central value {c:g} of {p.parameter}")
            params.append(Parameter(f"parameter_{p.parameter}", None, None, None, lo, hi,
                                    p.distribution, family=p.parameter, central=c))
            continue
        if p.code is not None:
            if p.code not in fraction_of:
                raise ScenarioError(f"{at(i, 'code')}: unknown HS code {p.code!r}"
                                    f"{did_you_mean(p.code, list(fraction_of))}")
            if fraction_of[p.code] is None:
                raise ScenarioError(f"{at(i, 'code')}: HS code {p.code} has no contained "
                                    "fraction to vary")
            found = [(p.code, fraction_of[p.code])]
        elif p.chemistry is not None:
            value = mass.get(p.chemistry, {}).get(p.material)
            if value is None:
                raise ScenarioError(f"{at(i)}: {p.chemistry} has no {p.material!r} mass "
                                    f"fraction (has {', '.join(mass.get(p.chemistry, {}))})")
            if value * hi > 1:
                raise ScenarioError(f"{at(i, 'range')}: a factor of {hi:g} pushes "
                                    f"{p.chemistry}'s {p.material} mass fraction {value:g} "
                                    "above 1 t per t")
            params.append(Parameter(f"{p.chemistry}_{p.material}", None, p.chemistry,
                                    p.material, lo, hi, p.distribution))
            continue
        else:
            if p.material not in codes_of:
                raise ScenarioError(f"{at(i, 'material')}: unknown material {p.material!r}"
                                    f"{did_you_mean(p.material, list(codes_of))}")
            found = [(c, f) for c, f in codes_of[p.material].items() if f is not None]
        for code, fraction in found:
            if fraction * hi > 1:
                raise ScenarioError(f"{at(i, 'range')}: a factor of {hi:g} pushes HS code "
                                    f"{code}'s contained fraction {fraction:g} above 1 t per t")
            params.append(Parameter(f"code_{code}", code, None, None, lo, hi, p.distribution))
    total = sens.samples ** len(params) if sens.method == "grid" else sens.samples
    if total > MAX_SAMPLES:
        what = (f"a grid of {sens.samples} points over {len(params)} parameters is {total:,} "
                "samples" if sens.method == "grid" else f"{total:,} samples")
        raise ScenarioError(f"{where(('sensitivity', 'samples')) if where else 'sensitivity'}"
                            f": {what}, more than the {MAX_SAMPLES:,} a run may draw")
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
    base_dir: str | None  # the scenario's folder: names it in messages, never read by workers
    blocs: dict
    sample_ids: tuple[int, ...]  # empty: no sensitivity
    factors: tuple[tuple[float, ...], ...]
    parameters: tuple[Parameter, ...]
    extensions: tuple[str, ...] = ()  # SHA-256 of each extension, in the spec's order
    scenario_name: str = "scenario.yaml"
    networks: str = ""  # where its networks come from (JSON): its key in the task inputs

    @property
    def key(self) -> str:
        first = self.sample_ids[0] if self.sample_ids else 0
        return f"v{self.variant:04d}-s{first:07d}"


@lru_cache(maxsize=4)
def _inputs(year: int):
    from ..statistics.inputs import Inputs

    inputs = Inputs.load(year)
    inputs.trade_table  # noqa: B018 -- read once per process; every task reuses it
    return inputs


def _samples_statistics(spec: ScenarioSpec) -> bool:
    """Whether the samples edit the statistics (and so rebuild the networks each time)."""
    return spec.sensitivity is not None and any(
        p.parameter is None for p in spec.sensitivity.parameters)


def networks_key(variant: Scenario, sampled: bool) -> str:
    """Where a variant's networks come from, as JSON text: a flows folder, the statistics
    after the variant's edits, or the year's statistics alone when the samples edit them
    (``sampled``: the run's sensitivity, which a variant's spec does not hold)."""
    spec = variant.spec
    folder = variant.flows_dir()
    if folder is not None:
        key = {"flows": str(folder), "year": spec.network.year,
               "close_imbalances": spec.network.close_imbalances,
               "materials": variant.materials}
    elif sampled:
        key = {"statistics": spec.network.year}
    else:
        key = {"statistics": spec.network.year, "profile": spec.network.profile,
               "edits": [e.model_dump(mode="json") for e in spec.edits],
               "materials": variant.materials}
    return json.dumps(key, sort_keys=True)


def task_inputs(tasks: Sequence[Task]) -> dict[str, object]:
    """What the tasks read, by key, loaded in this process once: for each distinct
    :attr:`Task.networks` the networks (or the year's statistics, which each sample edits),
    and for each Python extension file the content this process loaded, by its SHA-256."""
    from ..lp.extensions import loaded_content
    from ..networks import build_from_inputs, load_networks
    from ..statistics.counterfactual import apply_edits

    out: dict[str, object] = {}
    for t in tasks:
        if t.networks not in out:
            key = json.loads(t.networks)
            if "flows" in key:
                out[t.networks] = load_networks(key["flows"], key["materials"], key["year"],
                                                key["close_imbalances"])
            elif "edits" in key:
                spec = ScenarioSpec.model_validate_json(t.spec_json)
                out[t.networks] = build_from_inputs(
                    key["materials"], apply_edits(_inputs(key["statistics"]), spec.edits),
                    key["profile"])
            else:
                out[t.networks] = _inputs(key["statistics"])
        for sha in t.extensions:
            if sha not in out and (content := loaded_content(sha)) is not None:
                out[sha] = content
    return out


def task_scenario(task: Task, inputs: Mapping[str, object]) -> Scenario:
    """The task's scenario, its extensions loaded from the content the run read (same
    SHA-256), never from the user's folder; modules are imported here."""
    from ..lp.extensions import extension_contents, is_file_ref, load_extension

    spec = ScenarioSpec.model_validate_json(task.spec_json)
    base = Path(task.base_dir) if task.base_dir else None  # names the scenario; never read
    scenario = Scenario(spec, base / task.scenario_name if base else None, {})
    scenario.preset_blocs = task.blocs  # YAML families' bloc(NAME) as the run read them
    contents = {}
    for i, (ref, sha) in enumerate(zip(spec.extensions, task.extensions)):
        if is_file_ref(ref):
            if sha not in inputs:
                raise ChokepointError(f"extensions[{i}]: {ref}: its content (sha256 "
                                      f"{sha[:12]}) was not sent with the task")
            contents[ref] = inputs[sha]
    with extension_contents(contents):
        for i, (ref, sha) in enumerate(zip(spec.extensions, task.extensions)):
            load_extension(ref, base, f"extensions[{i}]", sha256=sha)
        scenario.user_families()
    return scenario


def run_task(task: Task, inputs: Mapping[str, object]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Indices of one variant (and its samples): vulnerability and stage rows, labelled.
    ``inputs`` holds what :func:`task_inputs` loaded (at least this task's keys)."""
    from pydantic import TypeAdapter

    from ..statistics.counterfactual import Edit, apply_edits
    from ..statistics.inputs import Inputs
    from ..focal import parse_focal
    from ..index import compute
    from ..networks import build_from_inputs, owners

    scenario = task_scenario(task, inputs)
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
    source = inputs[task.networks]
    base = apply_edits(source, spec.edits) if isinstance(source, Inputs) else None
    networks, lps = None, {}
    for sample, edits, values in runs:
        if networks is None or edits:  # only edits of the statistics rebuild the networks
            if base is None:
                networks = source
            else:
                inputs_ = apply_edits(base, edits, where="sensitivity")
                networks = build_from_inputs(materials, inputs_, spec.network.profile)
            focal = parse_focal(spec.focal, owners(networks), blocs=task.blocs)
        ind = compute(networks, focal, scenario.pairs, scenario.cases, spec.solver,
                      decompose=spec.stage_contributions, progress=False, families=families,
                      parameters={**parameters, **values}, options=spec.solver_options,
                      lps=lps, blocs=task.blocs)
        for df, out in ((ind.vulnerability, vul), (ind.stages, stages)):
            df = df.copy()
            df.insert(0, "sample", -1 if sample is None else sample)
            df.insert(0, "variant", task.variant)
            out.append(df)
    return pd.concat(vul, ignore_index=True), pd.concat(stages, ignore_index=True)


# -- many tasks -----------------------------------------------------------------------------


#: Samples per task: enough to amortise a task's start, few enough to balance the workers.
#: Fixed (not derived from the worker count) so that a resumed run finds the same tasks.
SAMPLES_PER_TASK = 50


def make_tasks(scenario: Scenario, blocs: dict) -> tuple[list[Variant], Samples, list[Task]]:
    from ..lp.yaml_families import parameter_files_read

    vs = variants(scenario)
    materials = None
    sampled = _samples_statistics(scenario.spec)
    if sampled:
        materials = _inputs(scenario.spec.network.year).materials
    _, central, _ = scenario.user_families()
    smp = samples(scenario.spec, materials, central, scenario.where)
    base_dir = str(scenario.path.parent.resolve()) if scenario.path else None
    name = scenario.path.name if scenario.path else "scenario.yaml"
    tasks = []
    for v in vs:
        # a YAML family's parameter files travel as values: workers read nothing of the user's
        inline = v.spec.model_copy(update={"constraints": parameter_files_read(
            v.spec.constraints, scenario.path.parent if scenario.path else None)})
        js = inline.model_dump_json(by_alias=True)
        sub = Scenario(v.spec, scenario.path, scenario._lines)
        _, _, loaded = sub.user_families()  # every variant's families load before any task
        shas = tuple(e.sha256 for e in loaded)
        nets = networks_key(sub, sampled)
        if scenario.spec.sensitivity is None:
            tasks.append(Task(v.index, js, base_dir, blocs, (), (), (), shas, name, nets))
            continue
        n = len(smp)
        for start in range(0, n, SAMPLES_PER_TASK):
            ids = tuple(range(start, min(n, start + SAMPLES_PER_TASK)))
            tasks.append(Task(v.index, js, base_dir, blocs, ids,
                              tuple(tuple(map(float, smp.factors[i])) for i in ids),
                              tuple(smp.parameters), shas, name, nets))
    return vs, smp, tasks


def _interrupted(e: BaseException) -> bool:
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return True
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return bool(STOP_SIGNAL)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during a run: what was saved (``saved`` of ``total`` tasks), and where
    the results went when they were already written."""

    def __init__(self, saved: int, total: int, written=None):
        super().__init__(interrupted_message(saved, total, written))
        self.saved, self.total, self.written = saved, total, written


def interrupted_message(saved: int, total: int, written=None) -> str:
    """What an interrupted run kept, in words for its one line."""
    if written is not None:
        return f"the results were written to {written}"
    if saved == total:
        return (f"all {total} tasks saved but the results not written: re-run to write them "
                "from the saved tasks")
    return f"{saved} of {total} tasks saved, re-run to resume"


#: Seconds a Dask scheduler may have no worker before the run gives up
#: (``CHOKEPOINT_DASK_WAIT`` overrides).
DASK_WORKER_WAIT_S = 30.0


def dask_wait() -> float:
    """``CHOKEPOINT_DASK_WAIT``, a positive finite number of seconds (default 30)."""
    import math

    text = os.environ.get("CHOKEPOINT_DASK_WAIT")
    if text is None:
        return DASK_WORKER_WAIT_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ChokepointError(f"CHOKEPOINT_DASK_WAIT: expected a positive number of seconds, "
                              f"got {text!r}")
    return value


def execute(tasks: Sequence[Task], store=None, workers: int = 1, dask: str | None = None,
            progress: bool | None = None) -> dict[str, tuple]:
    """Every task's result, by key: saved parts from ``store`` (a
    :class:`~chokepoint.parts.PartStore`), the rest computed here, on ``workers`` processes or
    on Dask, each saved as it finishes. An interrupt, a failed task or a dead worker stops
    every other task at once; the finished ones stay saved, and the error says how many."""
    from tqdm.auto import tqdm

    results: dict[str, tuple] = {}
    todo = []
    for t in tasks:
        got = store.load(t.key) if store else None
        if got is None:
            todo.append(t)
        else:
            results[t.key] = got
    if results:
        log.info("resuming: %d of %d tasks were saved by an earlier run", len(results),
                 len(tasks))
    inputs = task_inputs(todo)
    bar = tqdm(total=len(tasks), initial=len(results), desc="sweep", unit="task",
               disable=None if progress is None else not progress, leave=False)
    if dask:
        source = _run_dask(todo, inputs, dask)
    elif workers <= 1 or len(todo) <= 1:
        source = ((t, lambda t=t: run_task(t, inputs)) for t in todo)
    else:
        source = _run_pool(todo, inputs, workers)
    saved = len(results)
    try:
        for t, get in source:
            try:
                results[t.key] = r = get()
            except _WorkersLost:
                raise
            except ChokepointError as e:
                if _interrupted(e):
                    raise KeyboardInterrupt from None
                raise ChokepointError(f"{e} (task {t.key}); {saved} of {len(tasks)} tasks "
                                      "saved, re-run to resume") from None
            if store:
                store.save(t.key, r)
            saved += 1
            bar.update()
    except KeyboardInterrupt:
        raise Interrupted(saved, len(tasks)) from None
    except BrokenProcessPool:
        raise ChokepointError(f"a worker process died (killed, or out of memory?); {saved} of "
                              f"{len(tasks)} tasks saved, re-run to resume") from None
    except _WorkersLost as e:
        raise ChokepointError(f"{e}; {saved} of {len(tasks)} tasks saved, re-run to resume") \
            from None
    finally:
        source.close()
        bar.close()
    return results


def _run_in_worker(task: Task):
    from ..lifeline import worker_inputs

    return run_task(task, worker_inputs())


def _run_pool(todo, inputs: Mapping[str, object], workers: int):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from ..lifeline import stop, worker_init

    ctx = multiprocessing.get_context("spawn")
    # the inputs go as bytes, unpickled once the worker watches its parent (unpickling
    # networks imports pandas: seconds in which a killed run would leave the worker alive)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=worker_init,
                               initargs=(pickle.dumps(inputs, protocol=pickle.HIGHEST_PROTOCOL),))
    finished = False
    try:
        futures = {pool.submit(_run_in_worker, t): t for t in todo}
        for f in as_completed(futures):
            yield futures[f], f.result
        finished = True
    finally:
        if finished:
            pool.shutdown(wait=True)
        else:  # stop now: queued tasks are cancelled, running ones killed
            pool.shutdown(wait=False, cancel_futures=True)
            stop(multiprocessing.active_children())
            pool.shutdown(wait=True)  # the pool sees its workers gone and closes its queues


class _WorkersLost(ChokepointError):
    """Dask lost the workers a run needs; the run adds what was saved."""


def check_dask_address(address: str) -> None:
    """``local``, ``host:port`` or ``scheme://host:port`` with a scheme Dask speaks; else a
    one-line error (Dask's own is an internal ValueError)."""
    if address == "local":
        return
    scheme = address.split("://", 1)[0] if "://" in address else "tcp"
    try:
        from distributed.comm.registry import backends
    except ImportError:
        raise ChokepointError("--dask needs Dask: pip install 'chokepoint[dask]'") from None
    if scheme not in backends:
        raise ChokepointError(f"--dask {address}: unknown address scheme {scheme!r}"
                              f"{did_you_mean(scheme, list(backends))}; give 'local', "
                              f"host:port, or one of {', '.join(s + '://...' for s in backends)}")
    if not address.split("://", 1)[-1]:
        raise ChokepointError(f"--dask {address}: no host:port after {scheme}://")


@contextmanager
def _quiet_dask():
    """Dask logs every closed connection and cancelled task of a stopped run as warnings
    with tracebacks on stderr; the run says in one line what happened."""
    import warnings

    loggers = [logging.getLogger(n) for n in ("distributed", "tornado", "asyncio")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings():
            # "Port 8787 is already in use": the scheduler's HTTP endpoint, which we don't use
            warnings.filterwarnings("ignore", category=UserWarning, module=r"distributed\.")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _run_dask(todo, inputs: Mapping[str, object], address: str):
    try:
        from dask.distributed import Client, LocalCluster
        from distributed import wait as dask_wait_for
        from distributed.scheduler import KilledWorker
    except ImportError:
        raise ChokepointError("--dask needs Dask: pip install 'chokepoint[dask]'") from None
    import time

    check_dask_address(address)
    wait = dask_wait()
    with _quiet_dask():
        cluster = None
        if address == "local":
            cluster = LocalCluster(n_workers=os.cpu_count() or 1, threads_per_worker=1,
                                   processes=True, dashboard_address=None,
                                   silence_logs=logging.CRITICAL + 1)
            client = Client(cluster)
        else:
            try:
                client = Client(address, timeout="10s")
            except (OSError, TimeoutError, ValueError) as e:
                raise ChokepointError(f"--dask {address}: cannot reach the scheduler "
                                      f"({str(e).splitlines()[0]})") from None
        futures = []
        try:
            try:
                client.wait_for_workers(1, timeout=wait)
            except (TimeoutError, OSError):
                raise ChokepointError(f"--dask {address}: no worker joined the scheduler in "
                                      f"{wait:.0f} s (start dask workers, or use "
                                      "--workers)") from None
            # each input goes to every worker once (a worker that joins later fetches it
            # from a peer); a task names its inputs, and Dask hands it the worker's copies
            keys = list(inputs)
            sent = dict(zip(keys, client.scatter([inputs[k] for k in keys], broadcast=True,
                                                 hash=False))) if keys else {}
            futures = [client.submit(run_task, t, {k: sent[k] for k in (t.networks,
                                                                        *t.extensions)
                                                   if k in sent}, pure=False) for t in todo]
            index = {f.key: t for f, t in zip(futures, todo)}
            pending, gone_since = set(futures), None
            while pending:
                try:  # a bounded wait, to look at the workers between two
                    done = dask_wait_for(list(pending), timeout=1.0,
                                         return_when="FIRST_COMPLETED").done
                except TimeoutError:
                    done = set()
                except CancelledError:  # Dask forgot tasks whose inputs' workers all died
                    raise _WorkersLost(f"--dask {address}: the workers holding the run's "
                                       "inputs died (killed, or out of memory?)") from None
                for f in done:
                    pending.discard(f)
                    yield index[f.key], _result(f, address, KilledWorker)
                if done:
                    continue
                if client.nthreads():
                    gone_since = None
                elif gone_since is None:
                    gone_since = time.monotonic()
                elif time.monotonic() - gone_since > wait:
                    raise _WorkersLost(f"--dask {address}: every worker is gone (none for "
                                       f"{wait:.0f} s)")
        finally:
            if futures:
                client.cancel(futures)
            client.close()
            if cluster is not None:
                cluster.close()


def _result(future, address: str, killed: type):
    """``future.result`` with a worker that died running the task told in one line."""
    def get():
        try:
            return future.result()
        except killed:
            raise _WorkersLost(f"--dask {address}: the workers running a task died (killed, "
                               "or out of memory?)") from None
        except CancelledError:
            # the run's inputs are scattered to the workers: when every worker holding them
            # is gone, Dask forgets the tasks that need them and cancels them
            raise _WorkersLost(f"--dask {address}: the workers holding the run's inputs "
                               "died (killed, or out of memory?)") from None
    return get

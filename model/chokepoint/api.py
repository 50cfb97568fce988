"""The public API: load networks, compute indices, run scenarios."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import xarray as xr

from .cases import Case
from .chemistry import DEFAULT_PAIRS, Pair, parse_pair
from .errors import ChokepointError, NetworkError
from .focal import FocalSet, parse_focal
from .index import Indices, Timings, compute
from .lp import DEFAULT_SOLVER, ConstraintFamily, family_parameters
from .lp.extensions import check_selection
from .network import Network
from .networks import build_networks, load_network, load_networks, owners
from .outputs.results import families_text, table, to_dataset, write
from .runs.scenario import Scenario, load_scenario
from .runs.sweep import swept_name

__all__ = ["build_networks", "load_network", "load_networks", "vulnerability", "run",
           "RunResult"]


def vulnerability(
    networks: Mapping[str, Network] | Network,
    focal: Mapping[str, object] | Sequence[FocalSet],
    pairs: Sequence[str | Pair] = DEFAULT_PAIRS,
    cases: Iterable[str | Case] = tuple(Case),
    solver: str = DEFAULT_SOLVER,
    stage_contributions: bool = True,
    progress: bool | None = False,
    families: Sequence[ConstraintFamily] = (),
    parameters: Mapping[str, float] | None = None,
    solver_options: Mapping[str, object] | None = None,
    blocs: Mapping[str, Mapping] | None = None,
    workers: int = 1,
) -> xr.Dataset:
    """Vulnerability indices as a labelled Dataset (see :func:`chokepoint.outputs.results.to_dataset`).

    ``focal`` is either the scenario mapping (label -> countries) or a list of FocalSet.
    ``families`` are constraint families (:func:`chokepoint.constraint_family`) built into the
    models of their cases, with ``parameters`` (``"family.parameter": value``); their rules
    read ``blocs`` (name -> ``{"countries": [...]}``) as ``m.blocs``. With ``workers`` > 1,
    the bound cases of a large network (500,000 arcs with ``highspy``, a million with
    ``solver="network"``) are answered on that many forked processes side by side.
    """
    workers = _workers(workers) or 1
    if isinstance(networks, Network):
        networks = {networks.material: networks}
    pairs = [p if isinstance(p, Pair) else parse_pair(p) for p in pairs]
    cases = [c if isinstance(c, Case) else Case.parse(c) for c in cases]
    focal_sets = (list(focal) if not isinstance(focal, Mapping)
                  else parse_focal(focal, owners(networks)))
    missing = sorted({p.material for p in pairs} - set(networks))
    if missing:
        raise NetworkError(f"no network given for {', '.join(missing)}")
    parameters = family_parameters(families, parameters)
    # a Python family's rule runs in the engines anyway: here only the YAML families'
    # selections are checked (a run checks both, once, in prepare)
    check_selection(families, networks, blocs, build=False)
    indices = compute(networks, focal_sets, pairs, cases, solver,
                      decompose=stage_contributions, progress=progress, families=families,
                      parameters=parameters, options=solver_options, blocs=blocs,
                      workers=workers)
    return to_dataset(indices, {"solver": solver, "solver_options": dict(solver_options or {}),
                                "constraint_families": [
                                    {**f.describe(parameters), "call": _call(f, parameters)}
                                    for f in families]})


def _workers(workers) -> int | None:
    """``workers`` as the API takes it: None, or a positive whole number of processes."""
    import numbers

    if workers is None:
        return None
    if isinstance(workers, bool) or not isinstance(workers, numbers.Integral) or workers < 1:
        raise ChokepointError(f"workers: expected a positive whole number of processes, got "
                              f"{workers!r}")
    return int(workers)


@dataclass
class RunResult:
    scenario: Scenario
    indices: Indices
    dataset: xr.Dataset
    out_dir: Path | None
    networks: dict | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def table(self) -> str:
        """Table 2-shaped text; per variant for a sweep, at the central sample for a
        sensitivity run (its quantiles are in the dataset and sensitivity_summary.csv). A run
        with user constraint families says which, by title and with their parameters; a
        sweep's block says those of its variant."""
        vul = self.indices.vulnerability
        if "sample" in vul:
            vul = vul[vul["sample"] == 0].drop(columns="sample")
        if "variant" not in vul:
            head = "central values (sample 0)\n" if "sample" in self.indices.vulnerability \
                else ""
            fams = json.loads(self.dataset.attrs.get("constraint_families", "[]"))
            return families_text(fams, "user constraint families active") + head + table(vul)
        labels = self.dataset["variant_label"].values
        per_variant = json.loads(self.dataset.attrs.get("variant_families", "null"))
        if per_variant is None or not any(per_variant):  # no variant has a user family
            per_variant = None
        return "\n".join(
            f"variant {v}: {labels[v]}\n"
            + (families_text(per_variant[int(v)], "  user constraint families active", True)
               if per_variant else "")
            + table(block.drop(columns="variant"))
            for v, block in vul.groupby("variant", sort=True))


def prepare(scenario: Scenario | str | Path):
    """Everything a single run needs, checked before any solve: scenario, networks, focal sets
    (the scenario's own values; sweeps and samples are :func:`run`'s)."""
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    spec = scenario.spec
    folder = scenario.flows_dir()
    if folder is None:
        networks = build_networks(scenario.materials, spec.network.year, spec.network.profile,
                                  edits=spec.edits, where=scenario.where(("edits",)))
    else:
        networks = load_networks(folder, scenario.materials, spec.network.year,
                                 spec.network.close_imbalances)
    focal_sets = parse_focal(spec.focal, owners(networks), where=scenario.where(("focal",)),
                             blocs=scenario.blocs())
    families, _, _ = scenario.user_families()  # load and check them before any solve
    scenario.family_rows = check_selection(families, networks, scenario.blocs())
    return scenario, networks, focal_sets


def _attrs(scenario: Scenario, networks: Mapping[str, Network], focal_sets,
           variants=()) -> dict:
    from .outputs.provenance import provenance

    spec = scenario.spec
    families, parameters, loaded = scenario.user_families()
    solvers = [v.spec.solver for v in variants] or [spec.solver]
    return {
        "scenario": spec.name,
        "description": spec.description,
        "solver": spec.solver,
        "solver_options": spec.solver_options,
        "constraint_families": [{**f.describe(parameters), "call": _call(f, parameters),
                                 "rows": getattr(scenario, "family_rows", {}).get(f.name)}
                                for f in families],
        "extensions": [e.describe() for e in loaded],
        "year": spec.network.year,
        "networks": {m: Path(n.origin).name if "/" in n.origin or "\\" in n.origin
                     else n.origin for m, n in networks.items()},
        "profile": spec.network.profile if spec.network.flows is None else "flows",
        "focal_sets": {fs.label: fs.describe() for fs in focal_sets},
        "pairs": [str(p) for p in scenario.pairs],
        "edits": [e.describe() for e in spec.edits],
        "materials_in_aggregate": {
            c: sorted({p.material for p in scenario.pairs if p.chemistry == c})
            for c in dict.fromkeys(p.chemistry for p in scenario.pairs)},
        "source_method": "Cheng, Fuchs, Karplus & Michalek, Nature Communications 15, 2143 "
                         "(2024), doi:10.1038/s41467-024-46418-1",
        "provenance": provenance(scenario, solvers),
    }


def _check_variant_edits(scenario: Scenario, variants, networks=None) -> None:
    """Apply each variant's edits to its statistics here, and check its constraint families
    against the networks, so that a mistake is reported with its file, line and variant before
    any task starts."""
    from .statistics.counterfactual import apply_edits
    from .runs.sweep import _inputs

    key = ("sweep",) if scenario.spec.sweep else ("variants",)
    for v in variants:
        if v.coords and (v.spec.constraints or v.spec.extensions) and networks is not None:
            try:  # each variant's families name what the networks hold, and select rows
                families, _, _ = Scenario(v.spec, scenario.path, {}).user_families()
                check_selection(families, networks, scenario.blocs())
            except ChokepointError as e:
                raise type(e)(f"{scenario.where(key)}: variant {v.label}: {e}") from None
        if v.spec.edits and v.spec.network.flows is None and v.coords:
            apply_edits(_inputs(v.spec.network.year), v.spec.edits,
                        where=f"{scenario.where(key)}: variant {v.label}: edits")


def _notes(scenario: Scenario, variants) -> list[str]:
    """What a user should know about how the run was solved."""
    notes = []
    for v in variants:
        if v.spec.solver != "network":
            continue
        families, _, _ = Scenario(v.spec, scenario.path, {}).user_families()
        cases = [c.value for c in Scenario(v.spec, scenario.path, {}).cases
                 if any(c in f.cases for f in families)]
        if cases:
            note = (f"solver network serves the core families only: with "
                    f"{', '.join(f.name for f in families)}, {', '.join(cases)} are solved "
                    "by highspy")
            if note not in notes:
                notes.append(note)
    return notes


def _call(family: ConstraintFamily, parameters) -> str:
    """``name(p=v, ...)``: the family with the parameter values of the run."""
    from .lp.families import parameter_text

    return f"{family.name}({parameter_text(family, parameters)})"


def _families_of(scenario: Scenario) -> list[dict]:
    """The user families a (variant's) scenario makes active: name, title, cases and the call
    with its parameter values."""
    families, parameters, _ = scenario.user_families()
    return [{"name": f.name, "title": f.title, "call": _call(f, parameters),
             "cases": [c.value for c in Case if c in f.cases]} for f in families]


def _active(scenario: Scenario) -> str:
    families, parameters, _ = scenario.user_families()
    from .lp.families import parameter_text

    return "; ".join(f"{f.name}({parameter_text(f, parameters)})" for f in families)


def _with_swept_values(df: pd.DataFrame, variants) -> pd.DataFrame:
    """One column per swept key, named by the dotted key, after ``variant``: each row holds its
    variant's value (a number stays a number; lists and mappings are JSON text)."""
    keys = list(dict.fromkeys(k for v in variants for k in v.coords))
    at = list(df.columns).index("variant") + 1
    for i, key in enumerate(keys):
        values = [v.values.get(key) if isinstance(v.values.get(key), (int, float, str, bool))
                  else v.coords.get(key, "") for v in variants]
        df.insert(at + i, swept_name(key), df["variant"].map(dict(enumerate(values))))
    return df


def run(
    scenario: Scenario | str | Path,
    out: str | Path | None = None,
    write_files: bool = True,
    progress: bool | None = None,
    workers: int | None = None,
    dask: str | None = None,
    report: bool = False,
) -> RunResult:
    """Run a scenario (every variant and sample of it); writes ``vulnerability.csv``,
    ``stage_contributions.csv`` and ``results.nc`` (plus ``sensitivity_summary.csv`` for a
    sensitivity run, and ``report.html`` with ``figures/`` when ``report``) to ``out`` (default
    ``results/<name>/``) unless ``write_files`` is False.

    Several tasks run on ``workers`` processes (default: every core), or on a Dask cluster
    (``dask="local"`` or ``"tcp://host:port"``); an interrupted run resumes from its parts.
    """
    from .phases import phase
    from .publish import output_lock
    from .runs.sweep import make_tasks

    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    spec = scenario.spec
    workers = _workers(workers) or os.cpu_count() or 1
    if dask:
        from .runs.sweep import check_dask_address, dask_wait

        check_dask_address(dask)
        dask_wait()
    out_dir = Path(out) if out else Path("results") / spec.name
    # the output folder is checked and held before the networks are built: a busy or
    # foreign --out is told at once, not after seconds of work
    with output_lock(out_dir) if write_files else nullcontext():
        with phase("read"):
            scenario, networks, focal_sets = prepare(scenario)  # the base scenario first
        variants, samples, tasks = make_tasks(scenario, scenario.blocs())
        _check_variant_edits(scenario, variants, networks)
        return _run_locked(scenario, networks, focal_sets, variants, samples, tasks, out_dir,
                           write_files, progress, workers, dask, report)


def _run_locked(scenario, networks, focal_sets, variants, samples, tasks, out_dir,
                write_files, progress, workers, dask, report) -> RunResult:
    from .errors import STOP_SIGNAL
    from .runs.parts import PartStore, fingerprint, input_files
    from .runs.sweep import Interrupted

    store = None
    if write_files and len(tasks) > 1:
        base = scenario.path.parent if scenario.path else None
        files = [f for v in variants for f in input_files(v.spec, base)]
        store = PartStore(out_dir, fingerprint(tasks, files))
    if store is None:
        return _assemble(scenario, networks, focal_sets, variants, samples, tasks, out_dir,
                         write_files, progress, workers, dask, report, None)
    try:
        return _assemble(scenario, networks, focal_sets, variants, samples, tasks, out_dir,
                         write_files, progress, workers, dask, report, store)
    except BaseException as e:
        # Whatever the moment a signal lands (tasks running, results being assembled or
        # written), what it leaves is what the parts folder holds: say that, counted on disk.
        if isinstance(e, KeyboardInterrupt) or STOP_SIGNAL:
            if getattr(e, "written", None):
                raise
            raise Interrupted(store.count(), len(tasks)) from None
        if store.count() == 0:  # a failed run with nothing saved leaves nothing behind
            store.clear()
        raise


def _assemble(scenario, networks, focal_sets, variants, samples, tasks, out_dir, write_files,
              progress, workers, dask, report, store) -> RunResult:
    """The run's results: its tasks computed (or read from ``store``), assembled and written."""
    from .phases import phase
    from .runs.sweep import execute

    spec = scenario.spec
    # the common case: no pool, no parts (a sweep of one point runs as a task: its values
    # may change the solver or the networks the base scenario prepared)
    if len(tasks) == 1 and not spec.sensitivity and not variants[0].values:
        families, parameters, _ = scenario.user_families()
        indices = compute(networks, focal_sets, scenario.pairs, scenario.cases, spec.solver,
                          decompose=spec.stage_contributions, progress=progress,
                          families=families, parameters=parameters,
                          options=spec.solver_options, blocs=scenario.blocs(),
                          workers=workers)
    else:
        with phase("solve"):  # the tasks build and solve in their workers
            done = execute(tasks, store, workers, dask, progress)
        parts = [done[t.key] for t in tasks]
        vul = pd.concat([v for v, _ in parts], ignore_index=True)
        stages = pd.concat([s for _, s in parts], ignore_index=True)
        if len(variants) == 1:
            vul, stages = vul.drop(columns="variant"), stages.drop(columns="variant")
        else:
            vul, stages = (_with_swept_values(df, variants) for df in (vul, stages))
        if not spec.sensitivity:
            vul, stages = vul.drop(columns="sample"), stages.drop(columns="sample")
        indices = Indices(vul, stages, Timings())
    with phase("write"):
        return _labelled_and_written(scenario, networks, focal_sets, variants, samples, indices,
                                     out_dir, write_files, progress, report, store, len(tasks))


def _labelled_and_written(scenario, networks, focal_sets, variants, samples, indices, out_dir,
                          write_files, progress, report, store, n_tasks: int) -> RunResult:
    from .runs.sweep import Interrupted

    spec = scenario.spec
    notes = _notes(scenario, variants)
    attrs = {**_attrs(scenario, networks, focal_sets, variants), "notes": notes}
    ds = to_dataset(indices, attrs, variants=variants if len(variants) > 1 else None,
                    samples=samples if spec.sensitivity else None,
                    quantiles=spec.sensitivity.quantiles if spec.sensitivity else None)
    if len(variants) > 1 and any(v.spec.extensions or v.spec.constraints for v in variants):
        ds = ds.assign_coords(active_families=("variant", [
            _active(Scenario(v.spec, scenario.path, {})) for v in variants]))
        ds["active_families"].attrs["description"] = (
            "the user constraint families active in the variant, with their parameters")
    if len(variants) > 1:  # which families each variant ran with, for its table and grid
        ds.attrs["variant_families"] = json.dumps(
            [_families_of(Scenario(v.spec, scenario.path, {})) for v in variants])
    written = None
    extra = None
    from .outputs.results import warnings_for

    focal_nodes = {fs.label: {m: fs.nodes(n) for m, n in networks.items()} for fs in focal_sets}
    for v in variants:  # a sweep over focal sets brings labels of its own
        if v.spec.focal != spec.focal:
            for fs in parse_focal(v.spec.focal, owners(networks), blocs=scenario.blocs()):
                focal_nodes.setdefault(fs.label, {m: fs.nodes(n) for m, n in networks.items()})
    notes += warnings_for(ds, networks, focal_nodes)
    ds.attrs["notes"] = json.dumps(notes)
    if report:
        from .outputs.report import write_report

        first = focal_sets[0]
        text = scenario.path.read_text(encoding="utf-8") if scenario.path else ""
        extra = lambda tmp: write_report(  # noqa: E731
            ds, networks, text, tmp, focal_nodes[first.label], first.label, focal_nodes,
            progress)
    if write_files:
        written = write(indices, ds, out_dir, extra, _marker(scenario))
        if store:
            try:
                store.clear()
            except KeyboardInterrupt:  # the results are out: only housekeeping was left
                store.clear()
                raise Interrupted(n_tasks, n_tasks, written=out_dir) from None
    return RunResult(scenario, indices, ds, written, dict(networks), notes)


def _marker(scenario: Scenario) -> dict:
    """What made an output folder (its chokepoint-run.json)."""
    import sys
    import time

    from . import __version__

    return {"chokepoint": __version__, "scenario": scenario.spec.name,
            "scenario_file": scenario.path.name if scenario.path else None,
            "command": " ".join(["chokepoint", *sys.argv[1:]]) if sys.argv else "",
            "written": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def export_lp(scenario: Scenario | str | Path, focal: str, pair: str, case: str,
              path: str | Path, fmt: str | None = None) -> dict:
    """Write the exact LP one index solves (its focal set, pair and case), in tonnes, as an MPS
    or LP file any solver reads (a minimisation: see :mod:`chokepoint.lp.export`); returns
    what turns its optimum into the index: the case's sense and the product's supply
    (index = -objective / supply where the case maximises, objective / supply otherwise)."""
    from .errors import ScenarioError, did_you_mean
    from .lp import VulnerabilityLP
    from .lp.export import COMMENT
    from .publish import check_ours, check_path, header_starts, written

    suffix = Path(path).suffix.lower().lstrip(".")
    fmt = fmt or (suffix if suffix in ("mps", "lp") else "mps")
    if fmt not in ("mps", "lp"):
        raise ScenarioError(f"--format: {fmt!r} is neither mps nor lp")
    if suffix in ("mps", "lp") and suffix != fmt:
        raise ScenarioError(f"--out {path}: the name says {suffix}, --format says {fmt}")
    check_path(path, folder=False)
    ours = header_starts(f"{COMMENT[fmt]} chokepoint: ")  # the first line of every LP we write
    check_ours(path, ours)  # before any work
    scenario, networks, focal_sets = prepare(scenario)
    labels = {fs.label: fs for fs in focal_sets}
    if focal not in labels:
        raise ScenarioError(f"--focal: no focal set {focal!r} in the scenario"
                            f"{did_you_mean(focal, list(labels))}; it has: "
                            f"{', '.join(labels)}")
    p = parse_pair(pair, "--pair")
    if p.material not in networks:
        raise ScenarioError(f"--pair: the scenario has no {p.material} network (its pairs: "
                            f"{', '.join(map(str, scenario.pairs))})")
    c = Case.parse(case, "--case")
    net = networks[p.material]
    families, parameters, _ = scenario.user_families()
    lp = VulnerabilityLP(net, "highspy", families, parameters)
    from .lp.export import lp_text

    text, info = lp_text(lp, c, labels[focal].nodes(net), p.chemistry, fmt,
                         f"{focal}__{p}__{c.value}",
                         [f"scenario {scenario.spec.name}: focal set {focal!r}, pair {p}, "
                          f"case {c.value}"])
    with written(path, ours=ours) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return {**info, "focal": focal, "pair": str(p), "case": c.value, "format": fmt}

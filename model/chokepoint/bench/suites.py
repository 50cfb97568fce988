"""Benchmarks: time the index grid per solver, outside the test run.

- ``bench_scenario``: one scenario's grid with its own solver (median, p95 and max per solve).
- ``bench_suites``: suites x solvers x formulations, each solver in a fresh process:
  ``paper`` (the paper scenario's ten focal sets x five pairs x four cases), ``ranking`` (every
  owner of the four networks as a focal set), ``scale`` (seeded synthetic chains of N countries
  and 7 stages, the largest miner in the four cases; ``growth`` fits the exponent of time per
  index against size, ``plot_scale`` draws it), ``chain`` (the whole ``chokepoint run`` on a
  7-stage chain read from a flows file, against :data:`CHAIN_GOALS`).
- Solvers: any name a scenario takes (the engines ``highspy`` and ``network``, every Pyomo
  solver, ``appsi_*``, ``*_direct``, ``*_persistent``, the ``pyomo.contrib.solver`` interfaces)
  and the networkx baseline ``maxflow``; options after a colon: ``highspy:solver=ipm``.
- Formulations: ``core``, and with ``families=SCENARIO`` also the core plus that scenario's user
  constraint families, so an extension's cost is measured.
- ``write_csv`` appends tidy rows (one per run, suite, size, solver and formulation; an empty
  cell where a figure does not exist) with the run's metadata to ``bench.csv``.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..cases import Case
from ..errors import ChokepointError, did_you_mean
from .memory import PeakMemory

#: The authors' code on the paper grid (method.md section 4): about 15 s for 200 indices.
AUTHORS_SECONDS = 15.0
PAIRS = ("LFP-lithium", "NCM-lithium", "NCM-cobalt", "NCM-nickel", "NCM-manganese")
AGREEMENT_TOL = 1e-6
REFERENCE = "highspy"
BOUND_CASES = (Case.OPTIMISTIC, Case.PESSIMISTIC_A, Case.PESSIMISTIC_B)
SUITES = ("paper", "ranking", "scale", "chain")
#: Solvers ``--solvers`` defaults to (those missing here get a row saying so).
DEFAULT_SOLVERS = ("highspy", "network", "appsi_highs", "highs", "glpk", "cbc", "maxflow")


# -- solvers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SolverChoice:
    """A solver as the command line names it: ``name`` or ``name:option=value,...``."""

    text: str
    name: str
    options: dict = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> "SolverChoice":
        import yaml

        name, _, rest = text.partition(":")
        known = known_names()
        if name not in known:
            raise ChokepointError(f"--solvers: unknown solver {name!r}"
                                  f"{did_you_mean(name, known)}; any Pyomo solver name, "
                                  "highspy, network or maxflow")
        options = {}
        for item in filter(None, rest.split(",")):
            key, sep, value = item.partition("=")
            key = key.strip()
            if not sep or not key:
                raise ChokepointError(f"--solvers {text}: options are name:key=value,...")
            if key in options:
                raise ChokepointError(f"--solvers {text}: option {key!r} is given twice")
            try:
                options[key] = yaml.safe_load(value)
            except yaml.YAMLError as e:
                raise ChokepointError(f"--solvers {text}: option {key}: {value!r} is not a "
                                      f"YAML value ({getattr(e, 'problem', None) or e})") from None
        if options and name == "maxflow":
            raise ChokepointError(f"--solvers {text}: the maxflow baseline takes no options")
        return cls(text if options else name, name, options)

    @property
    def baseline(self) -> bool:
        return self.name == "maxflow"

    @property
    def cases(self) -> tuple[Case, ...]:
        return BOUND_CASES if self.baseline else tuple(Case)

    def unavailable(self) -> str | None:
        """Why this solver cannot run here, or None."""
        if self.baseline:
            try:
                import networkx  # noqa: F401
            except ImportError:
                return "networkx is not installed"
            return None
        from ..lp import VulnerabilityLP
        from ..network import Network

        tiny = Network.from_arcs([("Chile_mine", "Chile_ref_poss", 1.0),
                                  ("Chile_ref_poss", "Chile_ref", 1.0),
                                  ("Chile_ref", "Chile_cath_poss", 1.0),
                                  ("Chile_cath_poss", "LFP", 1.0)])
        try:
            # a failing probe is reported in one line of ours; Pyomo's own log lines of it
            # would only repeat it, on stdout
            with _quiet_pyomo():
                lp = VulnerabilityLP(tiny, self.name, options=self.options)
                lp.solve(frozenset({"Chile_mine"}), "LFP", Case.OPTIMISTIC)
        except Exception as e:  # a solver that fails on a 4-arc network cannot be timed
            why = str(e) if isinstance(e, ChokepointError) else f"{type(e).__name__}: {e}"
        else:
            return None
        if self.options and SolverChoice(self.name, self.name).unavailable() is None:
            # the solver is here: it is the user's options it rejects
            raise ChokepointError(f"--solvers {self.text}: {self.name} rejects these options "
                                  f"({why.splitlines()[0]})")
        return why


def _quiet_pyomo():
    """Pyomo's log output captured (and dropped) for the duration of a block."""
    import io

    from pyomo.common.log import LoggingIntercept

    return LoggingIntercept(io.StringIO(), "pyomo", level=50)


def known_names() -> list[str]:
    from ..lp import known_solvers

    return sorted(set(known_solvers()) | {"highspy", "network", "maxflow"})


def version_of(choice: SolverChoice) -> str | None:
    if choice.baseline:
        import networkx

        return f"networkx {networkx.__version__}"
    from ..outputs.provenance import solver_version

    return solver_version(choice.name)


# -- one scenario ----------------------------------------------------------------------------


@dataclass
class BenchReport:
    name: str
    indices: int
    solves: int
    build_s: dict[str, float]
    records: list[dict]
    wall_s: list[float]
    peak_mib: float | None = None
    decomposed: bool = True
    paper_grid: bool = False  # the work the authors timed: their comparison applies

    def render(self) -> str:
        ms = sorted(r["seconds"] * 1000 for r in self.records if r["seconds"] is not None)
        p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
        wall = statistics.median(self.wall_s)
        return "\n".join([
            f"benchmark: {self.name}: {self.indices} indices ({self.solves} LP solves per "
            f"repeat, stage decomposition {'included' if self.decomposed else 'off'}), "
            f"{len(self.wall_s)} repeat(s)",
            "  model build per network: " + ", ".join(
                f"{m} {t * 1000:.1f} ms" for m, t in self.build_s.items()),
            f"  solve per LP: median {statistics.median(ms):.2f} ms, p95 {p95:.2f} ms, "
            f"max {ms[-1]:.2f} ms (the first solve of each case formulation builds its engine)",
            f"  grid (build + solve), median over repeats: {wall:.3f} s"
            + (f"; peak memory {self.peak_mib:.0f} MiB" if self.peak_mib else "")]
            + ([f"  {authors_comparison(wall)}"] if self.paper_grid else []))

    def row(self, solver: str, options: dict) -> "Row":
        choice = SolverChoice(solver, solver, dict(options or {}))
        return _row(f"scenario {self.name}", choice, "scenario", self.records,
                    indices=self.indices, wall_s=statistics.median(self.wall_s),
                    peak_rss_mib=self.peak_mib)


def authors_comparison(wall_s: float) -> str:
    """The authors' time set beside ours: only ever for the paper grid, the work they timed."""
    return (f"the same 200 indices took the authors' code about {AUTHORS_SECONDS:.0f} s on "
            f"their desktop (method.md section 4; another machine): {AUTHORS_SECONDS / wall_s:.0f}"
            "x less time here")


def is_paper_grid(networks, focal_sets, pairs, cases, families) -> bool:
    """The scenario asks the paper grid's 200 questions on its networks, with the core method:
    the work the authors' ~15 s was measured on."""
    if families or set(cases) != set(Case) or sorted(map(str, pairs)) != sorted(PAIRS):
        return False
    nets, focal, _ = _grid("paper")
    if set(networks) != set(nets) or [f.label for f in focal_sets] != [f.label for f in focal]:
        return False
    for m, net in nets.items():
        if not net.arcs.equals(networks[m].arcs):
            return False
        if any(a.nodes(net) != b.nodes(networks[m]) for a, b in zip(focal, focal_sets)):
            return False
    return True


def bench_scenario(scenario, repeat: int = 3) -> BenchReport:
    """Time the grid ``repeat`` times after one warm-up run (imports, first HiGHS call)."""
    from ..api import prepare
    from ..index import FULL, compute

    scenario, networks, focal_sets = prepare(scenario)
    spec = scenario.spec
    families, parameters, _ = scenario.user_families()

    def once():
        t = time.perf_counter()
        res = compute(networks, focal_sets, scenario.pairs, scenario.cases, spec.solver,
                      decompose=spec.stage_contributions, progress=False, families=families,
                      parameters=parameters, options=spec.solver_options)
        return res, time.perf_counter() - t

    with PeakMemory() as memory:
        once()  # warm-up
        walls, runs = [], []
        for _ in range(max(1, repeat)):
            res, wall = once()
            walls.append(wall)
            runs.append(res.timings)
            builds = res.timings.build
    values = {tuple(r[:4]): r[4] for r in res.vulnerability.itertuples(index=False)
              if r[2] != "all"}
    stages = {tuple(r[:5]): r[5] for r in res.stages.itertuples(index=False)
              if r[2] != "all"}
    records = []
    for i, timings in enumerate(runs, 1):
        for step in dict.fromkeys(x[4] for x in timings.indices):
            step_values = values if step == FULL else {
                k[:4]: v for k, v in stages.items() if k[4] == step}
            for r in _records(timings, networks, step_values, i, step):
                if step != FULL:
                    r["instance"] += f"__{step}"
                records.append(r)
    n_index = len(values)
    return BenchReport(spec.name, n_index, len(res.timings.solves), builds, records, walls,
                       memory.mib, spec.stage_contributions,
                       is_paper_grid(networks, focal_sets, scenario.pairs, scenario.cases,
                                     families))


# -- suites across solvers -------------------------------------------------------------------


@dataclass
class Row:
    """One line of ``bench.csv``: a suite (and size), solver and formulation of one run;
    ``None`` where a figure does not exist (an empty CSV cell). Its solve times are computed
    from its :attr:`measurements`."""

    suite: str
    solver: str
    formulation: str = "core"
    status: str = "ok"
    countries: int | None = None  # scale and chain: economies of the synthetic chain
    stages: int | None = None
    network_arcs: int | None = None
    indices: int | None = None
    solve_median_ms: float | None = None
    solve_p95_ms: float | None = None
    wall_s: float | None = None
    peak_rss_mib: float | None = None
    max_abs_diff_vi: float | None = None
    solver_version: str | None = None
    solver_options: str | None = None
    # chain: where the whole run's time goes (chokepoint.phases), in the best repeat
    start_s: float | None = None  # interpreter start and imports
    read_s: float | None = None
    build_s: float | None = None
    solve_s: float | None = None
    write_s: float | None = None
    exit_s: float | None = None  # the rest: checks, then the interpreter's teardown
    engine: str | None = None  # what actually solved ('+' between several)
    measurements: list = field(default_factory=list, repr=False)  # not a column

    def summarise(self) -> "Row":
        """Solve median and p95 from the measurements; the engines that solved."""
        from .measurements import solve_ms

        if self.measurements:
            self.solve_median_ms, self.solve_p95_ms = solve_ms(self.measurements)
            self.engine = "+".join(dict.fromkeys(m.engine for m in self.measurements
                                                 if m.engine)) or None
        return self


def _measured(fn, *args):
    """In a worker: ``fn(*args)`` with the peak memory of the worker and its solver processes
    (glpsol, cbc) added to its times."""
    with PeakMemory() as memory:
        times, values, records = fn(*args)
    return {**times, "peak_rss_mib": memory.mib}, values, records


def _records(timings, nets, values: dict, repeat: int, step: str) -> list[dict]:
    """Measurement fields of each index of one grid run (its stage ``step`` only)."""
    out = []
    for focal, chem, mat, case, st, seconds, engine, iterations in timings.indices:
        if st != step:
            continue
        vi = values.get((focal, chem, mat, case))
        solved = seconds is not None
        out.append(dict(instance=instance_name(focal, f"{chem}-{mat}", case), focal=focal,
                        pair=f"{chem}-{mat}", case=case, repeat=repeat, seconds=seconds,
                        engine=engine if solved else None, iterations=iterations,
                        status="ok" if solved else f"not solved: {engine}", index=vi,
                        objective=None if vi is None else
                        vi * nets[mat].product_supply(chem)))
    return out


def instance_name(focal: str, pair: str, case: str, variant: str | None = None) -> str:
    """The name of one index's LP, as in an instance library's manifest."""
    return "__".join(([variant] if variant else []) + [focal, pair, case])


def _grid(suite: str):
    """Networks, focal sets and pairs of a suite (built from data/, 2020)."""
    from ..chemistry import parse_pair
    from ..focal import FocalSet, parse_focal
    from ..networks import build_networks, owners
    from ..runs.scenario import load_scenario
    from ..shipped import scenarios_dir

    pairs = [parse_pair(p) for p in PAIRS]
    nets = build_networks(sorted({p.material for p in pairs}), 2020, "paper")
    if suite == "paper":
        spec = load_scenario(scenarios_dir() / "paper_2020.yaml").spec
        focal = parse_focal(spec.focal, owners(nets))
    elif suite == "ranking":
        focal = [FocalSet.of(o, [o]) for o in owners(nets) if o != "Other"]
    else:
        raise ValueError(suite)
    return nets, focal, pairs


def _families(scenario: str | None):
    if scenario is None:
        return (), {}
    from ..runs.scenario import load_scenario

    fams, params, _ = load_scenario(scenario).user_families()
    return fams, params


def _run_suite(suite: str, choice: SolverChoice, families_from: str | None,
               repeat: int) -> tuple[dict, dict]:
    """In a worker process: times and the indices {(focal, chem, mat, case): vi}."""
    from ..index import compute

    nets, focal, pairs = _grid(suite)
    if choice.baseline:
        return _run_baseline(nets, focal, pairs, choice.cases, repeat)
    from ..index import FULL

    families, parameters = _families(families_from)
    walls, runs = [], []
    for i in range(repeat + 1):  # the first run warms up
        t = time.perf_counter()
        res = compute(nets, focal, pairs, choice.cases, choice.name, decompose=False,
                      progress=False, families=families, parameters=parameters,
                      options=choice.options)
        if i:
            walls.append(time.perf_counter() - t)
            runs.append(res.timings)
    values = {tuple(r[:4]): r[4] for r in res.vulnerability.itertuples(index=False)
              if r[2] != "all"}
    records = [r for i, t in enumerate(runs, 1) for r in _records(t, nets, values, i, FULL)]
    return _times(nets, walls, len(values)), values, records


def _run_baseline(nets, focal, pairs, cases, repeat):
    from .baseline import maxflow_vi

    walls, records, values = [], [], {}
    for i in range(repeat + 1):
        t0 = time.perf_counter()
        for p in pairs:
            net = nets[p.material]
            supply = net.product_supply(p.chemistry)
            for fs in focal:
                nodes = fs.nodes(net)
                for case in cases:
                    t = time.perf_counter()
                    vi = values[fs.label, p.chemistry, p.material, case.value] = \
                        maxflow_vi(net, nodes, p.chemistry, case)
                    if i:
                        records.append(dict(
                            instance=instance_name(fs.label, str(p), case.value),
                            focal=fs.label, pair=str(p), case=case.value, repeat=i,
                            seconds=time.perf_counter() - t, engine="networkx maxflow",
                            status="ok", index=vi, objective=vi * supply))
        if i:
            walls.append(time.perf_counter() - t0)
    return _times(nets, walls, len(values)), values, records


def _times(nets, walls, n) -> dict:
    return dict(network_arcs=sum(len(x.arcs) for x in nets.values()), indices=n,
                wall_s=statistics.median(walls))


SCALE_SIZES = (25, 50, 100, 200)
SCALE_STAGES = 7
#: A solver that needs longer than this (the four cases) at one size skips larger sizes.
SCALE_BUDGET_S = 60.0
#: A solver still running after this at one size is stopped (and skips the larger sizes).
SCALE_TIMEOUT_S = 300.0


def _run_scale(countries: int, stages: int, choice: SolverChoice, families_from: str | None,
               repeat: int) -> tuple[dict, dict]:
    """In a worker process: one synthetic chain, the largest miner in the four cases."""
    from ..focal import ALL_STAGES, FocalSet
    from ..lp import VulnerabilityLP
    from ..network import Stage
    from .baseline import maxflow_vi
    from .synthetic import synthetic_network

    families, parameters = _families(families_from)
    warm = synthetic_network(4, 4, seed=1)  # imports and the solver's first call
    net = synthetic_network(countries, stages, seed=0)
    mines = net.node_flow().loc[net.nodes.index[net.nodes["stage"] == Stage.MINE], "outflow"]
    owner = net.nodes.loc[mines.idxmax(), "owner"]
    values, records, walls = {}, [], []
    supply = net.product_supply("NCM")
    for i, network in enumerate((warm, net)):
        who = owner if i else warm.owners[0]
        nodes = FocalSet.of(who, [who], ALL_STAGES).nodes(network)
        lp = None if choice.baseline else VulnerabilityLP(
            network, choice.name, [f for f in families], parameters, choice.options)
        for r in range(repeat if i else 1):
            t_round = time.perf_counter()
            for case in choice.cases:
                t = time.perf_counter()
                v = maxflow_vi(network, nodes, "NCM", case) if lp is None else \
                    lp.solve(nodes, "NCM", case) / network.product_supply("NCM")
                if i:
                    seconds = time.perf_counter() - t
                    values[owner, "NCM", "synthetic", case.value] = v
                    engine, iterations = ("networkx maxflow", None) if lp is None else \
                        lp.last_solve()
                    records.append(dict(
                        instance=instance_name(owner, "NCM-synthetic", case.value,
                                               f"scale-{countries}"),
                        focal=owner, pair="NCM-synthetic", case=case.value, repeat=r + 1,
                        seconds=seconds, engine=engine, iterations=iterations, status="ok",
                        index=v, objective=v * supply, countries=countries))
            if i:
                walls.append(time.perf_counter() - t_round)
    return _times({"net": net}, walls, len(values)), values, records


def _in_fresh_process(fn, *args, timeout: float | None = None):
    """``fn(*args)`` in a new process (its own peak memory); TimeoutError after ``timeout`` s,
    the process killed."""
    ctx = multiprocessing.get_context("spawn")
    pool = ctx.Pool(1)
    try:
        result = pool.apply_async(fn, args).get(timeout)
    except multiprocessing.TimeoutError:
        pool.terminate()
        pool.join()
        raise TimeoutError(f"no result after {timeout:.0f} s") from None
    pool.close()
    pool.join()
    return result


def _formulations(families_from: str | None) -> list[tuple[str, str | None]]:
    """(label, scenario whose families are on) for each formulation benchmarked."""
    if families_from is None:
        return [("core", None)]
    names = [f.name for f in _families(families_from)[0]]
    if not names:
        raise ChokepointError(f"--families {families_from}: the scenario declares no "
                              "constraint family")
    return [("core", None), ("core+" + "+".join(names), families_from)]


def bench_suites(suites: list[str], solvers: list[SolverChoice], repeat: int = 3, log=print,
                 sizes: tuple[int, ...] = SCALE_SIZES, chain_sizes: tuple[int, ...] = (200,),
                 flows: Path | None = None, families_from: str | None = None) -> list[Row]:
    out = []
    reference = SolverChoice(REFERENCE, REFERENCE)
    missing = {}
    for s in [reference, *solvers]:
        if s.text not in missing:
            missing[s.text] = s.unavailable()
    for s in solvers:
        if missing[s.text]:
            log(f"{s.text}: not available here: {missing[s.text]}")
    for suite in suites:
        for label, fams in _formulations(families_from):
            if suite == "scale":
                out += _bench_scale(solvers, repeat, sizes, log, missing, label, fams)
            elif suite == "chain":
                out += bench_chain(solvers, chain_sizes, repeat, flows, log, missing, label,
                                   fams)
            else:
                out += _bench_grid(suite, solvers, repeat, log, missing, label, fams)
    return out


def _row(suite, choice: SolverChoice, label: str, records=(), **kw) -> Row:
    row = Row(suite=suite, solver=choice.name, formulation=label,
              solver_version=version_of(choice), solver_options=_options(choice), **kw)
    return _attach(row, records)


def _attach(row: Row, records) -> Row:
    """The row with its measurements (the worker's records) and the figures they give."""
    from .measurements import Measurement

    row.measurements = [Measurement(run_id="", suite=row.suite, formulation=row.formulation,
                                    solver=row.solver, solver_options=row.solver_options,
                                    **r) for r in records]
    return row.summarise()


def _options(choice: SolverChoice) -> str | None:
    return ",".join(f"{k}={v}" for k, v in choice.options.items()) or None


def _not_available(suite, choice, label, missing, **kw) -> Row:
    return Row(suite=suite, solver=choice.name, formulation=label,
               solver_options=_options(choice),
               status=f"not available: {missing[choice.text]}", **kw)


def _bench_grid(suite, solvers, repeat, log, missing, label, fams) -> list[Row]:
    out, reference = [], None
    ref = SolverChoice(REFERENCE, REFERENCE)
    for choice in [ref] + [s for s in solvers if s.text != REFERENCE]:
        if missing[choice.text]:
            if choice in solvers or choice.text in [s.text for s in solvers]:
                out.append(_not_available(suite, choice, label, missing))
            continue
        if choice.baseline and fams:
            out.append(Row(suite=suite, solver=choice.name, formulation=label,
                           status="not applicable: the baseline states the core method only"))
            continue
        t = time.perf_counter()
        log(f"{suite} [{label}]: {choice.text} ...")
        times, values, records = _in_fresh_process(_measured, _run_suite, suite, choice,
                                                   fams, repeat)
        log(f"{suite} [{label}]: {choice.text}: {time.perf_counter() - t:.1f} s")
        if choice.text == REFERENCE:
            reference = values
        diff = max(abs(v - reference[k]) for k, v in values.items())
        row = _row(suite, choice, label, records, max_abs_diff_vi=diff, **times)
        if diff > AGREEMENT_TOL:
            row.status = f"DISAGREES with {REFERENCE} by {diff:.3g}"
            log(f"!!! {suite}: {choice.text} DISAGREES with {REFERENCE}: largest |difference| "
                f"in VI {diff:.3g} > {AGREEMENT_TOL:g}")
        if choice.text in [s.text for s in solvers]:
            out.append(row)
    return out


def _bench_scale(solvers, repeat, sizes, log, missing, label, fams) -> list[Row]:
    out, too_slow = [], {}
    ref = SolverChoice(REFERENCE, REFERENCE)
    order = [ref] + [s for s in solvers if s.text != REFERENCE]
    wanted = {s.text for s in solvers}
    for s in order:
        if missing[s.text] and s.text in wanted:
            out.append(_not_available("scale", s, label, missing))
    for n in sizes:
        reference = None
        for choice in (s for s in order if not missing[s.text]):
            row = _row("scale", choice, label, countries=n, stages=SCALE_STAGES)
            if choice.baseline and fams:
                row.status = "not applicable: the baseline states the core method only"
            elif choice.text in too_slow:
                row.status = f"skipped: {too_slow[choice.text]}"
            else:
                log(f"scale [{label}]: N={n}: {choice.text} ...")
                t = time.perf_counter()
                try:
                    times, values, records = _in_fresh_process(
                        _measured, _run_scale, n, SCALE_STAGES, choice, fams, repeat,
                        timeout=SCALE_TIMEOUT_S)
                except TimeoutError:
                    row.status = f"stopped: N={n} took over {SCALE_TIMEOUT_S:.0f} s"
                    too_slow[choice.text] = row.status[len("stopped: "):]
                    log(f"scale: N={n}: {choice.text}: {row.status}")
                else:
                    log(f"scale [{label}]: N={n}: {choice.text}: "
                        f"{time.perf_counter() - t:.1f} s")
                    for k, v in times.items():
                        setattr(row, k, v)
                    _attach(row, records)
                    if times["wall_s"] > SCALE_BUDGET_S:
                        too_slow[choice.text] = (f"N={n} took {times['wall_s']:.0f} s "
                                                 f"(budget {SCALE_BUDGET_S:.0f} s)")
                    if choice.text == REFERENCE:
                        reference = values
                    if reference is not None:
                        row.max_abs_diff_vi = max(abs(v - reference[k])
                                                  for k, v in values.items())
                        if row.max_abs_diff_vi > AGREEMENT_TOL:
                            row.status = (f"DISAGREES with {REFERENCE} by "
                                          f"{row.max_abs_diff_vi:.3g}")
                            log(f"!!! scale N={n}: {choice.text} {row.status}")
            if choice.text in wanted:
                out.append(row)
    return out


#: The chain suite's goals on the project's 2-core machine (issue 20, "Start fast"): the whole
#: ``chokepoint run`` of N economies x 7 stages, two focal sets, four cases; (economies,
#: solver) -> (seconds, MiB).
CHAIN_GOALS = {(200, "highspy"): (11.0, 400.0), (200, "network"): (1.5, 400.0),
               (1000, "network"): (10.0, 2048.0)}
CHAIN_STAGES = 7
#: Above this many arcs the chain suite runs the reference solver (for agreement) only when
#: --solvers names it: at 5 million arcs it would take most of the suite's time.
REFERENCE_MAX_ARCS = 1_000_000


def chain_flows(countries: int, folder: Path, seed: int = 0) -> Path:
    """Write the seeded 7-stage chain of ``countries`` economies as a flows file
    (``lithium_2020.csv``, the published format) into ``folder``."""
    from dataclasses import replace

    from .synthetic import synthetic_network

    folder.mkdir(parents=True, exist_ok=True)
    net = replace(synthetic_network(countries, CHAIN_STAGES, seed=seed), material="lithium")
    path = folder / "lithium_2020.csv"
    net.to_csv(path)
    return path


def chain_scenario(flows: Path, folder: Path, families_from: str | None = None) -> Path:
    """A scenario over one flows file: its largest miner and its first country as focal
    sets, its first product with the file's material, four cases, no stage decomposition;
    with ``families_from``, that scenario's user constraint families too."""
    import re

    import yaml

    from ..chemistry import CHEMISTRIES, MATERIALS
    from ..network import Stage
    from ..networks import load_network

    net = load_network(flows)
    mines = net.node_flow()["outflow"][net.nodes["stage"] == Stage.MINE]
    largest = net.nodes.loc[mines.idxmax(), "owner"]
    first = next(o for o in net.owners if o != largest)
    material = net.material if net.material in MATERIALS else "lithium"
    product = next(p for p in net.products if material in CHEMISTRIES[p])
    match = re.fullmatch(r"[a-z]+_(\d{4})", flows.stem)
    spec = {"name": f"chain-{len(net.arcs)}", "network": {
        "flows": str(flows.parent.resolve()), "year": int(match.group(1)) if match else 2020},
        "pairs": [f"{product}-{material}"], "stage_contributions": False,
        "focal": {"largest miner": [largest], "first country": [first]}}
    if families_from:
        from ..runs.scenario import load_scenario

        theirs = load_scenario(families_from)
        base = theirs.path.parent.resolve()
        spec["extensions"] = [str((base / e).resolve()) if e.endswith(".py") else e
                              for e in theirs.spec.extensions]
        spec["constraints"] = {k: v.model_dump() for k, v in theirs.spec.constraints.items()}
        spec["parameters"] = dict(theirs.spec.parameters)
        spec["families"] = dict(theirs.spec.families)
    path = folder / "chain.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def _timed_run(scenario: Path, choice: SolverChoice, out: Path,
               timeout: float = SCALE_TIMEOUT_S) -> tuple[float, float, int, dict]:
    """Wall seconds and peak resident MiB of a whole ``chokepoint run`` in its own process
    with its pool workers, its exit status (-1: stopped after ``timeout`` seconds) and where
    its time went (:func:`_phases`)."""
    import json
    import signal
    import subprocess
    import tempfile

    from .. import phases

    sets = ["--set", f"solver={choice.name}"]
    if choice.options:
        sets += ["--set", f"solver_options={json.dumps(choice.options)}"]
    with tempfile.TemporaryDirectory(prefix="chokepoint-phases-") as tmp:
        report = Path(tmp) / "phases.json"
        env = {**os.environ, phases.ENV: str(report)}
        t, started = time.perf_counter(), time.time()
        proc = subprocess.Popen([sys.executable, "-m", "chokepoint.cli", "run", str(scenario),
                                 *sets, "--out", str(out), "--quiet", "--no-progress"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        with PeakMemory(proc.pid) as memory:
            try:
                code = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGTERM)  # a run stops its workers on SIGTERM
                proc.wait()
                code = -1
        wall, ended = time.perf_counter() - t, time.time()
        spent = _phases(json.loads(report.read_text()), started, ended) \
            if report.is_file() and not code else {}
    return wall, memory.mib, code, spent


def _phases(report: dict, started: float, ended: float) -> dict[str, float]:
    """Seconds of a run's phases: ``start`` is the interpreter's start up to ``main`` plus
    the run's imports, ``exit`` what is left: checks and results' notes outside the phases,
    and the interpreter's teardown after ``main``."""
    seen = report["phases"]
    start = report["main_start"] - started + seen.get("imports", 0.0)
    out = {"start_s": start, **{f"{k}_s": seen.get(k, 0.0) for k in ("read", "build", "solve",
                                                                      "write")}}
    out["exit_s"] = (ended - started) - sum(out.values())
    return out


def bench_chain(solvers: list[SolverChoice], sizes: tuple[int, ...] = (200,), repeat: int = 1,
                flows: Path | None = None, log=print, missing: dict | None = None,
                label: str = "core", families_from: str | None = None) -> list[Row]:
    """Whole ``chokepoint run`` on the 7-stage chain read from a flows file (generated per
    size, or ``flows``), each solver in its own process; best wall time of ``repeat``."""
    import tempfile

    import pandas as pd

    missing = missing or {s.text: s.unavailable() for s in solvers}
    out = []
    ref = SolverChoice(REFERENCE, REFERENCE)
    order = [ref] + [s for s in solvers if s.text != REFERENCE]
    wanted = {s.text for s in solvers}
    with tempfile.TemporaryDirectory(prefix="chokepoint-chain-") as tmp:
        tmp = Path(tmp)
        for n in ([None] if flows else sizes):
            folder = tmp / f"chain-{n}"
            folder.mkdir()
            path = Path(flows) if flows else chain_flows(n, folder / "flows")
            scenario = chain_scenario(path, folder, families_from)
            arcs = sum(1 for _ in open(path, encoding="utf-8-sig")) - 1
            reference = None
            for choice in order:
                if missing.get(choice.text):
                    if choice.text in wanted:
                        out.append(_not_available("chain", choice, label, missing,
                                                  countries=n, network_arcs=arcs))
                    continue
                if choice.text not in wanted and arcs > REFERENCE_MAX_ARCS:
                    log(f"chain [{label}]: {arcs} arcs: {REFERENCE} is not run for agreement "
                        f"above {REFERENCE_MAX_ARCS:,} arcs (ask for it in --solvers)")
                    continue
                if choice.baseline:
                    if choice.text in wanted:
                        out.append(Row(suite="chain", solver=choice.text, formulation=label,
                                       countries=n, network_arcs=arcs,
                                       status="not applicable: no command runs the baseline"))
                    continue
                log(f"chain [{label}]: {arcs} arcs: {choice.text} (whole chokepoint run) ...")
                t = time.perf_counter()
                runs = [_timed_run(scenario, choice, folder / _slug(choice.text))
                        for _ in range(repeat)]
                log(f"chain [{label}]: {arcs} arcs: {choice.text}: "
                    f"{time.perf_counter() - t:.1f} s")
                name = f"chain-{n}" if n else f"chain {path.name}"
                row = _row("chain", choice, label, [dict(
                    instance=name, focal=None, pair=None, case=None, repeat=i, seconds=w,
                    engine=f"chokepoint run (solver {choice.name})", countries=n,
                    status={0: "ok", -1: "stopped"}.get(code, "failed"))
                    for i, (w, _, code, _) in enumerate(runs, 1)],
                    countries=n, stages=CHAIN_STAGES, network_arcs=arcs, indices=8)
                # a chain measurement is a whole run, not a solve: no time per solve
                row.solve_median_ms = row.solve_p95_ms = None
                if any(code == -1 for _, _, code, _ in runs):
                    row.status = f"stopped: over {SCALE_TIMEOUT_S:.0f} s"
                elif any(code for _, _, code, _ in runs):
                    row.status = "failed"
                else:
                    best = min(runs, key=lambda r: r[0])
                    row.wall_s = best[0]
                    row.peak_rss_mib = max(m for _, m, _, _ in runs)
                    for key, value in best[3].items():
                        setattr(row, key, value)
                    vi = pd.read_csv(folder / _slug(choice.text) / "vulnerability.csv")[
                        "vi"].to_numpy()
                    if choice.text == REFERENCE:
                        reference = vi
                    row.max_abs_diff_vi = None if reference is None else \
                        float(abs(vi - reference).max())
                    if row.max_abs_diff_vi is not None and row.max_abs_diff_vi > AGREEMENT_TOL:
                        row.status = f"DISAGREES with {REFERENCE} by {row.max_abs_diff_vi:.3g}"
                    goal = CHAIN_GOALS.get((n, choice.text))
                    if goal and label == "core":
                        secs, mib = goal
                        met = row.wall_s <= secs and row.peak_rss_mib <= mib
                        row.status = (row.status if row.status != "ok" else
                                      f"goal {secs:g} s, {mib:g} MiB"
                                      + (": met" if met else ": MISSED"))
                if choice.text in wanted:
                    out.append(row)
    return out


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text)


# -- tables, growth, the CSV -------------------------------------------------------------------


def growth(rows: list[Row]) -> str:
    """Median time per index by size and solver, and the exponent b of t ~ arcs^b fitted
    by least squares on log-log, with its standard error, where three sizes or more ran."""
    import numpy as np
    from scipy.stats import linregress

    ok = [r for r in rows if r.suite == "scale" and r.status == "ok"]
    if not ok:
        return ""
    keys = list(dict.fromkeys((r.solver, r.formulation) for r in ok))
    sizes = sorted({(r.countries, r.network_arcs) for r in ok})
    cell = {(r.solver, r.formulation, r.countries): r for r in ok}
    names = [s if f == "core" else f"{s} [{f}]" for s, f in keys]
    head = f"{'N':>4} {'arcs':>8} " + " ".join(f"{n:>17}" for n in names)
    lines = ["time per index (median ms), synthetic chains, 7 stages, four cases", head,
             "-" * len(head)]
    for n, arcs in sizes:
        lines.append(f"{n:>4} {arcs:>8} " + " ".join(
            f"{cell[s, f, n].solve_median_ms:>17.1f}" if (s, f, n) in cell else f"{'-':>17}"
            for s, f in keys))
    for (s, f), name in zip(keys, names):
        pts = [(cell[s, f, n].network_arcs, cell[s, f, n].solve_median_ms) for n, _ in sizes
               if (s, f, n) in cell]
        if len(pts) < 3:
            lines.append(f"{name}: no exponent fitted ({len(pts)} size(s); three or more "
                         "are needed)")
            continue
        fit = linregress(np.log([a for a, _ in pts]), np.log([t for _, t in pts]))
        b, se = fit.slope, fit.stderr
        lines.append(f"{name}: time per index grows as arcs^{b:.2f} +- {se:.2g} "
                     f"({len(pts)} sizes; N^{2 * b:.2f}, arcs ~ N^2 at fixed density)")
    return "\n".join(lines) + "\n"


def chain_phases(rows: list[Row]) -> str:
    """Where each whole run of the chain suite spent its time, its memory per arc, and how
    time and memory grew from the smallest chain to the largest, per solver."""
    import math

    ok = [r for r in rows if r.suite == "chain" and r.wall_s is not None
          and r.start_s is not None]
    if not ok:
        return ""
    head = (f"{'N':>5} {'arcs':>8} {'solver':<18} {'wall s':>7} {'start':>6} {'read':>6} "
            f"{'build':>6} {'solve':>6} {'write':>6} {'exit':>6} {'peak MiB':>8} "
            f"{'B/arc':>6}")
    lines = ["whole chokepoint run, chain suite: where the time goes (seconds; start = "
             "interpreter and imports, exit = checks and teardown)", head, "-" * len(head)]
    for r in ok:
        n = "-" if r.countries is None else r.countries
        lines.append(
            f"{n:>5} {r.network_arcs or 0:>8} {r.solver[:18]:<18} {r.wall_s:>7.2f} "
            + " ".join(f"{getattr(r, k):>6.2f}" for k in
                       ("start_s", "read_s", "build_s", "solve_s", "write_s", "exit_s"))
            + f" {r.peak_rss_mib:>8.0f} "
            + f"{r.peak_rss_mib * 2 ** 20 / r.network_arcs:>6.0f}")
    for solver in dict.fromkeys(r.solver for r in ok):
        mine = sorted((r for r in ok if r.solver == solver and r.countries),
                      key=lambda r: r.network_arcs)
        if len(mine) < 2:
            continue
        a, b = mine[0], mine[-1]
        arcs, wall = b.network_arcs / a.network_arcs, b.wall_s / a.wall_s
        lines.append(
            f"{solver}: {a.countries} -> {b.countries} economies: arcs x{arcs:.1f}, whole run "
            f"x{wall:.1f} (arcs^{math.log(wall) / math.log(arcs):.2f}), peak memory "
            f"x{b.peak_rss_mib / a.peak_rss_mib:.1f} "
            f"({_per_arc(a, b):.0f} bytes per added arc); per phase: " + ", ".join(
                f"{k[:-2]} x{getattr(b, k) / getattr(a, k):.1f}" for k in
                ("start_s", "read_s", "build_s", "solve_s", "write_s")
                if getattr(a, k) > 0))
    return "\n".join(lines) + "\n"


def _per_arc(a: Row, b: Row) -> float:
    """Peak memory per arc added from chain ``a`` to the larger chain ``b`` (bytes)."""
    return (b.peak_rss_mib - a.peak_rss_mib) * 2 ** 20 / (b.network_arcs - a.network_arcs)


def plot_scale(rows: list[Row], path: Path) -> list[Path]:
    """Time per index against network size, one line per solver (PNG and SVG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..outputs.figures import save

    ok = [r for r in rows if r.suite == "scale" and r.status == "ok"]
    if not ok:
        return []
    fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    for key in dict.fromkeys((r.solver, r.formulation) for r in ok):
        pts = sorted((r.network_arcs, r.solve_median_ms) for r in ok
                     if (r.solver, r.formulation) == key)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o",
                label=key[0] if key[1] == "core" else f"{key[0]} [{key[1]}]")
    ax.set(xscale="log", yscale="log", xlabel="arcs in the network",
           ylabel="median solve time per index (ms)",
           title="Time per index vs network size (synthetic, 7 stages)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)


def _fmt(value, spec: str, width: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}{spec}}"


def render_suites(rows: list[Row]) -> str:
    # names are shown whole: a cut formulation (core+stage_cap+...) hides which one it was
    sw = max([22] + [len(r.solver) for r in rows])
    fw = max([14] + [len(r.formulation) for r in rows])
    head = (f"{'suite':<10} {'solver':<{sw}} {'formulation':<{fw}} {'arcs':>7} {'indices':>7} "
            f"{'median ms':>9} {'p95 ms':>8} {'wall s':>7} {'peak MiB':>8} {'max |dVI|':>9}  "
            "status")
    lines = [head, "-" * len(head)]
    for r in rows:
        suite = f"{r.suite} {r.countries}" if r.countries else r.suite
        lines.append(
            f"{suite:<10} {r.solver:<{sw}} {r.formulation:<{fw}} "
            f"{_fmt(r.network_arcs, 'd', 7)} {_fmt(r.indices, 'd', 7)} "
            f"{_fmt(r.solve_median_ms, '.2f', 9)} {_fmt(r.solve_p95_ms, '.2f', 8)} "
            f"{_fmt(r.wall_s, '.2f', 7)} {_fmt(r.peak_rss_mib, '.0f', 8)} "
            f"{_fmt(r.max_abs_diff_vi, '.1e', 9)}  {r.status}")
    return "\n".join(lines) + "\n"


#: bench.csv: the run's id and the per-run figures (its metadata is in runs.csv)
COLUMNS = ["run_id"] + [f.name for f in fields(Row) if f.name != "measurements"]
BENCH = "bench.csv"


def check_outputs(folder: Path) -> None:
    """bench.csv, measurements.csv and runs.csv of ``folder`` can be appended to: checked
    before anything is measured."""
    from .measurements import MEASUREMENTS, RUNS, Measurement, RunInfo, check_csv, columns

    check_csv(folder / BENCH, COLUMNS, "bench.csv")
    check_csv(folder / MEASUREMENTS, columns(Measurement), "measurements.csv")
    check_csv(folder / RUNS, columns(RunInfo), "runs.csv")


def write_run(rows: list[Row], info, folder: Path) -> list[Path]:
    """Append the run's measurements, its summary rows and its metadata to the three files of
    ``folder``, all or none (a file with other columns is left alone and named in an error)."""
    from dataclasses import replace

    from .measurements import (MEASUREMENTS, RUNS, Measurement, RunInfo, appended, columns,
                               write_all)

    folder = Path(folder)
    ms = [asdict(replace(m, run_id=info.run_id)) for r in rows for m in r.measurements]
    summary = [{"run_id": info.run_id, **{k: v for k, v in asdict(r).items()
                                          if k != "measurements"}} for r in rows]
    texts = {MEASUREMENTS: appended(folder / MEASUREMENTS, columns(Measurement), ms,
                                    "measurements.csv"),
             BENCH: appended(folder / BENCH, COLUMNS, summary, "bench.csv"),
             RUNS: appended(folder / RUNS, columns(RunInfo), [asdict(info)], "runs.csv")}
    write_all(folder, texts)
    return [folder / n for n in texts]


def solver_versions(solvers) -> dict:
    return {c.name: version_of(c) for c in solvers if version_of(c)}

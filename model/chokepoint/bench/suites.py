"""Benchmarks: time the index grid per solver, outside the test run.

- ``bench_scenario``: one scenario's grid with its own solver (model build vs re-solves).
- ``bench_suites``: the ``paper`` grid (the paper scenario's ten focal sets x five pairs x four
  cases) and the ``ranking`` grid (every owner of the four NCM/LFP networks as a single focal
  set) for every solver in :data:`SOLVERS` available here. Each solver runs in a fresh process,
  so that its peak memory is its own; the grid runs once to warm up and then ``repeat`` times.
- ``scale``: seeded synthetic networks of N countries and 7 stages, one focal set (the largest
  miner, counted at every stage) in the four cases, per solver and size; a solver whose size
  takes longer than :data:`SCALE_BUDGET_S` skips the larger sizes. ``growth`` fits the
  exponent of time per index against network size, ``plot_scale`` draws it.
- ``chain``: the whole ``chokepoint run`` of a scenario over the 7-stage chain read from a flows
  file (written from the generator, or the user's own file), two focal sets, four cases, each
  solver in its own process: wall time and peak memory against :data:`CHAIN_GOALS`.
"""

from __future__ import annotations

import csv
import multiprocessing
import resource
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..api import prepare
from ..cases import Case
from ..index import compute
from ..runs.scenario import Scenario

#: The authors' code on the paper grid (method.md section 4): about 15 s for 200 indices.
AUTHORS_SECONDS = 15.0
PAIRS = ("LFP-lithium", "NCM-lithium", "NCM-cobalt", "NCM-nickel", "NCM-manganese")
AGREEMENT_TOL = 1e-6


@dataclass(frozen=True)
class SolverSpec:
    """A way of computing the index: a Pyomo solver name, or the max-flow baseline."""

    name: str
    description: str
    pyomo: str | None  # None: the networkx baseline
    cases: tuple[Case, ...] = tuple(Case)

    def available(self) -> bool:
        if self.pyomo is None:
            try:
                import networkx  # noqa: F401
            except ImportError:
                return False
            return True
        from ..errors import SolverError
        from ..lp import VulnerabilityLP
        from ..network import Network

        tiny = Network.from_arcs([("Chile_mine", "Chile_ref_poss", 1.0),
                                  ("Chile_ref_poss", "Chile_ref", 1.0),
                                  ("Chile_ref", "Chile_cath_poss", 1.0),
                                  ("Chile_cath_poss", "LFP", 1.0)])
        try:
            VulnerabilityLP(tiny, self.pyomo)
        except SolverError:
            return False
        return True


SOLVERS: dict[str, SolverSpec] = {s.name: s for s in [
    SolverSpec("highspy", "HiGHS via highspy, each formulation's matrix fed once, bounds and "
               "costs updated as vectors (the default)", "highspy"),
    SolverSpec("network", "the exact network-flow engine: igraph max-flow for the bound cases, "
               "a sparse linear system for the proportional case", "network"),
    SolverSpec("appsi_highs", "HiGHS on the Pyomo model, Pyomo's persistent (appsi) interface",
               "appsi_highs"),
    SolverSpec("highs", "HiGHS on the Pyomo model, Pyomo's non-persistent interface (model "
               "sent every solve)", "highs"),
    SolverSpec("glpk", "GLPK glpsol on the Pyomo model, through LP files", "glpk"),
    SolverSpec("cbc", "COIN-OR CBC on the Pyomo model, through LP files", "cbc"),
    SolverSpec("maxflow", "networkx max-flow, the independent test baseline (optimistic, "
               "pessimistic A and B only)", None,
               (Case.OPTIMISTIC, Case.PESSIMISTIC_A, Case.PESSIMISTIC_B)),
]}
REFERENCE = "highspy"


# -- one scenario ----------------------------------------------------------------------------


@dataclass
class BenchReport:
    name: str
    indices: int
    solves: int
    build_s: dict[str, float]
    solve_s: list[float]
    wall_s: list[float]

    def render(self) -> str:
        ms = sorted(t * 1000 for t in self.solve_s)
        p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
        wall = statistics.median(self.wall_s)
        lines = [
            f"benchmark: {self.name}: {self.indices} indices ({self.solves} LP solves per "
            f"repeat, stage decomposition included), {len(self.wall_s)} repeat(s)",
            "  model build per network: " + ", ".join(
                f"{m} {t * 1000:.1f} ms" for m, t in self.build_s.items()),
            f"  solve per LP: median {statistics.median(ms):.2f} ms, p95 {p95:.2f} ms, "
            f"max {ms[-1]:.2f} ms",
            f"  grid (build + solve), median over repeats: {wall:.3f} s "
            f"= {AUTHORS_SECONDS / wall:.0f}x faster than the authors' ~{AUTHORS_SECONDS:.0f} s",
        ]
        return "\n".join(lines)


def bench_scenario(scenario: Scenario | str, repeat: int = 3) -> BenchReport:
    """Time the grid ``repeat`` times after one warm-up run (imports, first HiGHS call)."""
    scenario, networks, focal_sets = prepare(scenario)
    spec = scenario.spec

    def once():
        t = time.perf_counter()
        res = compute(networks, focal_sets, scenario.pairs, scenario.cases, spec.solver,
                      decompose=spec.stage_contributions, progress=False)
        return res, time.perf_counter() - t

    once()  # warm-up
    walls, solves, builds = [], [], {}
    for _ in range(max(1, repeat)):
        res, wall = once()
        walls.append(wall)
        solves.extend(res.timings.solves)
        builds = res.timings.build
    n_index = len(res.vulnerability[res.vulnerability["material"] != "all"])
    return BenchReport(spec.name, n_index, len(res.timings.solves), builds, solves, walls)


# -- suites across solvers -------------------------------------------------------------------


@dataclass
class SuiteResult:
    suite: str
    solver: str
    status: str  # "ok", or why it was skipped
    countries: int = 0  # scale suite: synthetic network size
    stages: int = 0
    network_arcs: int = 0
    indices: int = 0
    build_s: float = 0.0
    solve_median_ms: float = 0.0
    solve_p95_ms: float = 0.0
    wall_s: float = 0.0
    peak_rss_mib: float = 0.0
    max_abs_diff: float | None = None


def _grid(suite: str):
    """Networks, focal sets, pairs and cases of a suite (built from data/, 2020)."""
    from ..networks import build_networks
    from ..chemistry import parse_pair
    from ..focal import FocalSet, parse_focal
    from ..runs.scenario import load_scenario

    pairs = [parse_pair(p) for p in PAIRS]
    nets = build_networks(sorted({p.material for p in pairs}), 2020, "paper")
    if suite == "paper":
        from ..shipped import scenarios_dir

        spec = load_scenario(scenarios_dir() / "paper_2020.yaml").spec
        owners = sorted({o for n in nets.values() for o in n.owners})
        focal = parse_focal(spec.focal, owners)
    elif suite == "ranking":
        owners = sorted({o for n in nets.values() for o in n.owners} - {"Other"})
        focal = [FocalSet.of(o, [o]) for o in owners]
    else:
        raise ValueError(suite)
    return nets, focal, pairs


def _run_suite(suite: str, solver: str, repeat: int) -> tuple[dict, dict]:
    """In a worker process: times and the indices {(focal, chem, mat, case): vi}."""
    spec = SOLVERS[solver]
    nets, focal, pairs = _grid(suite)
    cases = spec.cases
    if spec.pyomo is None:
        return _run_baseline(nets, focal, pairs, cases, repeat)
    walls, solves, builds = [], [], 0.0
    for i in range(repeat + 1):  # the first run warms up
        t = time.perf_counter()
        res = compute(nets, focal, pairs, cases, spec.pyomo, decompose=False, progress=False)
        if i:
            walls.append(time.perf_counter() - t)
            solves.extend(res.timings.solves)
            builds = sum(res.timings.build.values())
    values = {tuple(r[:4]): r[4] for r in res.vulnerability.itertuples(index=False)
              if r[2] != "all"}
    return _times(nets, walls, solves, builds, len(values)), values


def _run_baseline(nets, focal, pairs, cases, repeat):
    from .baseline import maxflow_vi

    walls, solves, values = [], [], {}
    for i in range(repeat + 1):
        t0 = time.perf_counter()
        for p in pairs:
            net = nets[p.material]
            for fs in focal:
                nodes = fs.nodes(net)
                for case in cases:
                    t = time.perf_counter()
                    values[fs.label, p.chemistry, p.material, case.value] = \
                        maxflow_vi(net, nodes, p.chemistry, case)
                    if i:
                        solves.append(time.perf_counter() - t)
        if i:
            walls.append(time.perf_counter() - t0)
    return _times(nets, walls, solves, 0.0, len(values)), values


def _times(nets, walls, solves, build, n) -> dict:
    ms = sorted(t * 1000 for t in solves)
    return dict(network_arcs=sum(len(n.arcs) for n in nets.values()), indices=n,
                build_s=build, solve_median_ms=statistics.median(ms),
                solve_p95_ms=ms[min(len(ms) - 1, int(0.95 * len(ms)))],
                wall_s=statistics.median(walls),
                peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


SCALE_SIZES = (25, 50, 100, 200)
SCALE_STAGES = 7
#: A solver that needs longer than this (build + four cases) at one size skips larger sizes.
SCALE_BUDGET_S = 60.0
#: A solver still running after this at one size is stopped (and skips the larger sizes).
SCALE_TIMEOUT_S = 300.0


def _run_scale(countries: int, stages: int, solver: str, repeat: int) -> tuple[dict, dict]:
    """In a worker process: one synthetic network, the largest miner in the four cases."""
    from .baseline import maxflow_vi
    from ..focal import ALL_STAGES, FocalSet
    from ..lp import VulnerabilityLP
    from ..network import Stage
    from .synthetic import synthetic_network

    spec = SOLVERS[solver]
    warm = synthetic_network(4, 4, seed=1)  # imports and the solver's first call
    net = synthetic_network(countries, stages, seed=0)
    mines = net.node_flow().loc[net.nodes.index[net.nodes["stage"] == Stage.MINE], "outflow"]
    owner = net.nodes.loc[mines.idxmax(), "owner"]
    values, solves, walls, build = {}, [], [], 0.0
    for i, network in enumerate((warm, net)):
        nodes = FocalSet.of(owner if i else warm.owners[0], [owner if i else warm.owners[0]],
                            ALL_STAGES).nodes(network)
        t0 = time.perf_counter()
        lp = VulnerabilityLP(network, spec.pyomo) if spec.pyomo else None
        build = time.perf_counter() - t0
        for _ in range(repeat if i else 1):
            t_round = time.perf_counter()
            for case in spec.cases:
                t = time.perf_counter()
                if lp is None:
                    v = maxflow_vi(network, nodes, "NCM", case)
                else:
                    v = lp.solve(nodes, "NCM", case) / network.product_supply("NCM")
                if i:
                    solves.append(time.perf_counter() - t)
                    values[owner, "NCM", "synthetic", case.value] = v
            if i:
                walls.append(build + time.perf_counter() - t_round)
    return _times({"net": net}, walls, solves, build, len(values)), values


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


def bench_suites(suites: list[str], solvers: list[str], repeat: int = 3, log=print,
                 sizes: tuple[int, ...] = SCALE_SIZES, chain_sizes: tuple[int, ...] = (200,),
                 flows: Path | None = None) -> list[SuiteResult]:
    out = []
    for suite in suites:
        if suite == "scale":
            out += _bench_scale(solvers, repeat, sizes, log)
            continue
        if suite == "chain":
            out += bench_chain(solvers, chain_sizes, repeat, flows, log)
            continue
        reference: dict | None = None
        for solver in [REFERENCE] + [s for s in solvers if s != REFERENCE]:
            if not SOLVERS[solver].available():
                log(f"{suite}: {solver}: skipped, not available on this machine")
                out.append(SuiteResult(suite, solver, "not available"))
                continue
            times, values = _in_fresh_process(_run_suite, suite, solver, repeat)
            if solver == REFERENCE:
                reference = values
                if REFERENCE not in solvers:
                    continue
            diff = max(abs(v - reference[k]) for k, v in values.items())
            result = SuiteResult(suite, solver, "ok", max_abs_diff=diff, **times)
            if diff > AGREEMENT_TOL:
                result.status = f"DISAGREES with {REFERENCE} by {diff:.3g}"
                log(f"!!! {suite}: {solver} DISAGREES with {REFERENCE}: largest |difference| "
                    f"in VI {diff:.3g} > {AGREEMENT_TOL:g}")
            out.append(result)
    return out


def _bench_scale(solvers, repeat, sizes, log) -> list[SuiteResult]:
    out, too_slow = [], {}
    order = [REFERENCE] + [s for s in solvers if s != REFERENCE]
    available = {s: SOLVERS[s].available() for s in order}
    for s in order:
        if not available[s]:
            log(f"scale: {s}: skipped, not available on this machine")
            if s in solvers:
                out.append(SuiteResult("scale", s, "not available"))
    for n in sizes:
        reference = None
        for solver in (s for s in order if available[s]):
            row = SuiteResult("scale", solver, "ok", countries=n, stages=SCALE_STAGES)
            if solver in too_slow:
                row.status = f"skipped: {too_slow[solver]}"
                if solver in solvers:
                    out.append(row)
                continue
            log(f"scale: N={n}: {solver} ...")
            try:
                times, values = _in_fresh_process(_run_scale, n, SCALE_STAGES, solver, repeat,
                                                  timeout=SCALE_TIMEOUT_S)
            except TimeoutError:
                row.status = f"stopped: N={n} took over {SCALE_TIMEOUT_S:.0f} s"
                too_slow[solver] = row.status[len("stopped: "):]
                log(f"scale: N={n}: {solver}: {row.status}")
                if solver in solvers:
                    out.append(row)
                continue
            for k, v in times.items():
                setattr(row, k, v)
            if times["wall_s"] > SCALE_BUDGET_S:
                too_slow[solver] = (f"N={n} took {times['wall_s']:.0f} s "
                                    f"(budget {SCALE_BUDGET_S:.0f} s)")
            if solver == REFERENCE:
                reference = values
            if reference is not None:
                row.max_abs_diff = max(abs(v - reference[k]) for k, v in values.items())
                if row.max_abs_diff > AGREEMENT_TOL:
                    row.status = f"DISAGREES with {REFERENCE} by {row.max_abs_diff:.3g}"
                    log(f"!!! scale N={n}: {solver} DISAGREES with {REFERENCE}: largest "
                        f"|difference| in VI {row.max_abs_diff:.3g} > {AGREEMENT_TOL:g}")
            if solver in solvers:
                out.append(row)
    return out


#: The chain suite's goals on the project's 2-core machine (issue: LP core v2): the whole
#: ``chokepoint run`` of 200 economies x 7 stages, two focal sets, four cases.
CHAIN_GOALS = {"highspy": (25.0, 1024.0), "network": (5.0, None)}
CHAIN_STAGES = 7


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


def chain_scenario(flows: Path, folder: Path) -> Path:
    """A scenario over one flows file: its largest miner and its first country as focal
    sets, its first product with the file's material, four cases, no stage decomposition."""
    import re

    import yaml

    from ..chemistry import CHEMISTRIES, MATERIALS
    from ..networks import load_network
    from ..network import Stage

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
    path = folder / "chain.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def _timed_run(scenario: Path, solver: str, out: Path,
               timeout: float = SCALE_TIMEOUT_S) -> tuple[float, float, int]:
    """Wall seconds and peak resident MiB of a whole ``chokepoint run`` in its own process,
    and its exit status (-1: stopped after ``timeout`` seconds)."""
    import os
    import signal
    import subprocess

    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "chokepoint.cli", "run", str(scenario),
                             "--set", f"solver={solver}", "--out", str(out), "--quiet",
                             "--no-progress"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() - t > timeout:
            proc.send_signal(signal.SIGTERM)
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = -1
            return time.perf_counter() - t, usage.ru_maxrss / 1024, -1
        time.sleep(0.05)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss / 1024, proc.returncode


def bench_chain(solvers: list[str], sizes: tuple[int, ...] = (200,), repeat: int = 1,
                flows: Path | None = None, log=print) -> list[SuiteResult]:
    """Whole ``chokepoint run`` on the 7-stage chain read from a flows file (generated per
    size, or ``flows``), each solver in its own process; best wall time of ``repeat``."""
    import tempfile

    import pandas as pd

    out = []
    with tempfile.TemporaryDirectory(prefix="chokepoint-chain-") as tmp:
        tmp = Path(tmp)
        for n in ([None] if flows else sizes):
            folder = tmp / f"chain-{n}"
            path = Path(flows) if flows else chain_flows(n, folder / "flows")
            scenario = chain_scenario(path, folder)
            arcs = sum(1 for _ in open(path, encoding="utf-8-sig")) - 1
            reference = None
            for solver in [REFERENCE] + [s for s in solvers if s != REFERENCE]:
                if not SOLVERS[solver].available() or SOLVERS[solver].pyomo is None:
                    continue
                log(f"chain: {arcs} arcs: {solver} (whole chokepoint run) ...")
                runs = [_timed_run(scenario, solver, folder / solver) for _ in range(repeat)]
                row = SuiteResult("chain", solver, "ok", countries=n or 0,
                                  stages=CHAIN_STAGES, network_arcs=arcs, indices=8,
                                  wall_s=min(w for w, _, _ in runs),
                                  peak_rss_mib=max(m for _, m, _ in runs))
                if any(code == -1 for _, _, code in runs):
                    row.status = f"stopped: over {SCALE_TIMEOUT_S:.0f} s"
                elif any(code for _, _, code in runs):
                    row.status = "failed"
                else:
                    vi = pd.read_csv(folder / solver / "vulnerability.csv")["vi"].to_numpy()
                    if reference is None:
                        reference = vi
                    row.max_abs_diff = float(abs(vi - reference).max())
                    if row.max_abs_diff > AGREEMENT_TOL:
                        row.status = f"DISAGREES with {REFERENCE} by {row.max_abs_diff:.3g}"
                    goal = CHAIN_GOALS.get(solver)
                    if goal and n == 200:
                        secs, mib = goal
                        met = row.wall_s <= secs and (mib is None or row.peak_rss_mib <= mib)
                        row.status = (row.status if row.status != "ok" else
                                      f"goal {secs:.0f} s" + (f", {mib / 1024:.0f} GiB"
                                                              if mib else "")
                                      + (": met" if met else ": MISSED"))
                if solver in solvers:
                    out.append(row)
    return out


def growth(results: list[SuiteResult]) -> str:
    """Median time per index by size and solver, and the fitted exponent t ~ arcs^b."""
    import numpy as np

    rows = [r for r in results if r.suite == "scale" and r.status == "ok"]
    if not rows:
        return ""
    sizes = sorted({(r.countries, r.network_arcs) for r in rows})
    solvers = list(dict.fromkeys(r.solver for r in rows))
    cell = {(r.solver, r.countries): r for r in rows}
    head = f"{'N':>4} {'arcs':>8} " + " ".join(f"{s:>17}" for s in solvers)
    lines = ["time per index (median ms), synthetic networks, 7 stages, four cases",
             head, "-" * len(head)]
    for n, arcs in sizes:
        lines.append(f"{n:>4} {arcs:>8} " + " ".join(
            f"{cell[s, n].solve_median_ms:>17.1f}" if (s, n) in cell else f"{'-':>17}"
            for s in solvers))
    for s in solvers:
        pts = [(cell[s, n].network_arcs, cell[s, n].solve_median_ms) for n, _ in sizes
               if (s, n) in cell]
        if len(pts) >= 2:
            b = np.polyfit(np.log([a for a, _ in pts]), np.log([t for _, t in pts]), 1)[0]
            lines.append(f"{s}: time per index grows as arcs^{b:.2f} (N^{2 * b:.2f}, "
                         f"arcs ~ N^2 at fixed density)")
    return "\n".join(lines) + "\n"


def plot_scale(results: list[SuiteResult], path: Path) -> list[Path]:
    """Time per index against network size, one line per solver (PNG and SVG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in results if r.suite == "scale" and r.status == "ok"]
    if not rows:
        return []
    fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    for solver in dict.fromkeys(r.solver for r in rows):
        pts = sorted((r.network_arcs, r.solve_median_ms, r.countries) for r in rows
                     if r.solver == solver)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=solver)
    ax.set(xscale="log", yscale="log", xlabel="arcs in the network",
           ylabel="median solve time per index (ms)",
           title="Time per index vs network size (synthetic, 7 stages)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix in (".png", ".svg"):
        fig.savefig(path.with_suffix(suffix), dpi=120)
        written.append(path.with_suffix(suffix))
    plt.close(fig)
    return written


def render_suites(results: list[SuiteResult]) -> str:
    head = (f"{'suite':<10} {'solver':<17} {'arcs':>7} {'indices':>7} {'build s':>8} "
            f"{'median ms':>9} {'p95 ms':>8} {'wall s':>7} {'peak MiB':>8} {'max |dVI|':>9}  status")
    lines = [head, "-" * len(head)]
    for r in results:
        suite = f"{r.suite} {r.countries}" if r.countries else r.suite
        if r.status in ("not available", "failed") or r.status.startswith(("skipped",
                                                                          "stopped")):
            lines.append(f"{suite:<10} {r.solver:<17} {'':>7} {'':>7} {'':>8} {'':>9} {'':>8} "
                         f"{'':>7} {'':>8} {'':>9}  {r.status}")
            continue
        diff = "-" if r.max_abs_diff is None else f"{r.max_abs_diff:.1e}"
        timed = r.suite != "chain"  # the chain suite times whole runs only
        lines.append(
            f"{suite:<10} {r.solver:<17} {r.network_arcs:>7} {r.indices:>7} "
            + (f"{r.build_s:>8.3f} {r.solve_median_ms:>9.2f} {r.solve_p95_ms:>8.2f} " if timed
               else f"{'-':>8} {'-':>9} {'-':>8} ")
            + f"{r.wall_s:>7.2f} {r.peak_rss_mib:>8.0f} {diff:>9}  {r.status}")
    return "\n".join(lines) + "\n"


def write_csv(results: list[SuiteResult], path: Path) -> None:
    from ..publish import written

    with written(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(asdict(results[0])))
        w.writeheader()
        w.writerows(asdict(r) for r in results)


def machine() -> str:
    import os
    import platform

    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"Python {sys.version.split()[0]}, {platform.system()}")

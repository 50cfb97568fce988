"""Benchmarks: time the index grid per solver, outside the test run.

- ``bench_scenario``: one scenario's grid with its own solver (model build vs re-solves).
- ``bench_suites``: the ``paper`` grid (the paper scenario's ten focal sets x five pairs x four
  cases) and the ``ranking`` grid (every owner of the four NCM/LFP networks as a single focal
  set) for every solver in :data:`SOLVERS` available here. Each solver runs in a fresh process,
  so that its peak memory is its own; the grid runs once to warm up and then ``repeat`` times.
"""

from __future__ import annotations

import csv
import multiprocessing
import resource
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from .api import prepare
from .cases import Case
from .index import compute
from .scenario import Scenario

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
        from .errors import SolverError
        from .lp import VulnerabilityLP
        from .network import Network

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
    SolverSpec("highs-persistent", "HiGHS, Pyomo appsi persistent interface (the default)",
               "appsi_highs"),
    SolverSpec("highs", "HiGHS, Pyomo's non-persistent interface (model sent every solve)",
               "highs"),
    SolverSpec("glpk", "GLPK glpsol, through LP files", "glpk"),
    SolverSpec("cbc", "COIN-OR CBC, through LP files", "cbc"),
    SolverSpec("maxflow", "networkx max-flow (optimistic, pessimistic A and B only)", None,
               (Case.OPTIMISTIC, Case.PESSIMISTIC_A, Case.PESSIMISTIC_B)),
]}
REFERENCE = "highs-persistent"


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
    from .api import build_networks
    from .chemistry import parse_pair
    from .focal import FocalSet, parse_focal
    from .scenario import load_scenario

    pairs = [parse_pair(p) for p in PAIRS]
    nets = build_networks(sorted({p.material for p in pairs}), 2020, "paper")
    if suite == "paper":
        root = Path(__file__).resolve().parents[2]
        spec = load_scenario(root / "scenarios" / "paper_2020.yaml").spec
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


def _in_fresh_process(fn, *args):
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(fn, *args).result()


def bench_suites(suites: list[str], solvers: list[str], repeat: int = 3,
                 log=print) -> list[SuiteResult]:
    out = []
    for suite in suites:
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


def render_suites(results: list[SuiteResult]) -> str:
    head = (f"{'suite':<8} {'solver':<17} {'arcs':>5} {'indices':>7} {'build s':>8} "
            f"{'median ms':>9} {'p95 ms':>7} {'wall s':>7} {'peak MiB':>8} {'max |dVI|':>9}  status")
    lines = [head, "-" * len(head)]
    for r in results:
        if r.status == "not available":
            lines.append(f"{r.suite:<8} {r.solver:<17} {'':>5} {'':>7} {'':>8} {'':>9} {'':>7} "
                         f"{'':>7} {'':>8} {'':>9}  skipped: not available")
            continue
        lines.append(
            f"{r.suite:<8} {r.solver:<17} {r.network_arcs:>5} {r.indices:>7} {r.build_s:>8.3f} "
            f"{r.solve_median_ms:>9.2f} {r.solve_p95_ms:>7.2f} {r.wall_s:>7.2f} "
            f"{r.peak_rss_mib:>8.0f} {r.max_abs_diff:>9.1e}  {r.status}")
    return "\n".join(lines) + "\n"


def write_csv(results: list[SuiteResult], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(asdict(results[0])))
        w.writeheader()
        w.writerows(asdict(r) for r in results)


def machine() -> str:
    import os
    import platform

    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"Python {sys.version.split()[0]}, {platform.system()}")

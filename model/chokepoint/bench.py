"""Benchmark: time a scenario's grid, separating model build from re-solves.

Kept out of the test run; ``chokepoint bench SCENARIO.yaml`` prints the report.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from .api import prepare
from .index import compute
from .scenario import Scenario

#: The authors' code on the paper grid (method.md section 4): about 15 s for 200 indices.
AUTHORS_SECONDS = 15.0


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

"""An instance library: every index's LP of a scenario as a file any LP solver reads, and a
benchmark that solves the files.

- :func:`export_all` (``chokepoint export-lp SCENARIO --all --out DIR``): one gzipped free MPS
  file per focal set x pair x case (and per variant of a sweep) under ``DIR/instances/``, and
  ``DIR/manifest.csv`` (:data:`MANIFEST_COLUMNS`) with each file's size and optimal objective
  (from ``chokepoint``'s own engine, ``highspy``, not from the file), product supply and index.
- :func:`bench_instances` (``chokepoint bench --instances DIR --solvers ...``): solves every
  file of a manifest: ``highspy`` (HiGHS reading the file in this process), ``glpk`` and
  ``cbc`` (the programs ``glpsol`` and ``cbc`` on the file, each solve a process of its own),
  and any other Pyomo solver on a Pyomo model of the file's matrix (Pyomo's solvers read no
  MPS: its shell interfaces convert only to LP and NL files). Each objective is checked
  against the manifest to :data:`RELATIVE_TOL`; the rows are measurements like any suite's.

Every file minimises (see :mod:`chokepoint.lp.export`): index = -objective / supply where the
case maximises, objective / supply where it minimises.
"""

from __future__ import annotations

import gzip
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from ..errors import ChokepointError
from .suites import Row, SolverChoice, _attach, instance_name, version_of

MANIFEST = "manifest.csv"
MANIFEST_COLUMNS = ["instance", "file", "variant", "focal", "pair", "case", "sense", "rows",
                    "columns", "nonzeros", "objective", "product_supply_t", "index"]
#: An objective agrees with the manifest when within this fraction of max(|objective|, 1 t).
RELATIVE_TOL = 1e-6
#: Solvers run as their own programs on the file (name -> program).
PROGRAMS = {"glpk": "glpsol", "cbc": "cbc"}
#: A program still running after this is stopped (its measurement says so).
TIMEOUT_S = 600.0


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", name)


def export_all(scenario, out: str | Path, log=print) -> Path:
    """Write every index's LP of ``scenario`` (sweep variants too) and the manifest into the
    folder ``out`` (replaced whole, only if chokepoint made it); returns the manifest's path."""
    import pandas as pd

    from ..api import prepare
    from ..index import compute
    from ..lp import VulnerabilityLP
    from ..lp.export import lp_text
    from ..publish import check_output, output_lock, staged
    from ..runs.scenario import Scenario, load_scenario
    from ..runs.sweep import make_tasks

    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    folder = check_output(out)
    if scenario.spec.sensitivity is not None:
        log("chokepoint: note: the sensitivity samples are not exported; the central "
            "values are")
    from tqdm.auto import tqdm

    variants, _, _ = make_tasks(scenario, scenario.blocs())
    rows = []
    # a bar on a terminal (tqdm's rule): a large network's LP takes seconds to write
    bar = tqdm(desc="instances", unit="LP", leave=False, disable=None)
    with output_lock(folder), staged(folder, {"command": "chokepoint export-lp --all"}) as tmp:
        (tmp / "instances").mkdir()
        for v in variants:
            sub = scenario if len(variants) == 1 else Scenario(v.spec, scenario.path,
                                                               scenario._lines)
            sub, networks, focal_sets = prepare(sub)
            families, parameters, _ = sub.user_families()
            prefix = None if len(variants) == 1 else f"v{v.index}"
            res = compute(networks, focal_sets, sub.pairs, sub.cases, "highspy",
                          decompose=False, progress=False, families=families,
                          parameters=parameters)
            vi = {tuple(r[:4]): r[4] for r in res.vulnerability.itertuples(index=False)}
            for p in sub.pairs:
                net = networks[p.material]
                lp = VulnerabilityLP(net, "highspy", families, parameters)
                supply = net.product_supply(p.chemistry)
                for fs in focal_sets:
                    nodes = fs.nodes(net)
                    for case in sub.cases:
                        name = instance_name(fs.label, str(p), case.value, prefix)
                        about = [f"scenario {sub.spec.name}"
                                 + (f", variant {v.index}: {v.label}" if prefix else "")
                                 + f": focal set {fs.label!r}, pair {p}, case {case.value}"]
                        text, info = lp_text(lp, case, nodes, p.chemistry, "mps", name, about)
                        file = f"instances/{_slug(name)}.mps.gz"
                        n = 1
                        while (tmp / file).exists():  # labels that differ only in symbols
                            n += 1
                            file = f"instances/{_slug(name)}-{n}.mps.gz"
                        # mtime=0: the same LP gives the same bytes
                        (tmp / file).write_bytes(gzip.compress(text.encode(), mtime=0))
                        index = vi[fs.label, p.chemistry, p.material, case.value]
                        sign = -1.0 if info["sense"] == "maximize" else 1.0
                        size = _size(tmp / file)
                        rows.append(dict(instance=name, file=file,
                                         variant=v.label if prefix else None,
                                         focal=fs.label, pair=str(p), case=case.value,
                                         sense=info["sense"], **size,
                                         objective=sign * index * supply,
                                         product_supply_t=supply, index=index))
                        bar.update()
            log(f"export-lp --all: {len(rows)} instances written"
                + (f" (variant {v.index} of {len(variants)})" if prefix else ""))
        bar.close()
        pd.DataFrame(rows, columns=MANIFEST_COLUMNS).to_csv(
            tmp / MANIFEST, index=False, float_format="%.17g")
        (tmp / "README.txt").write_text(README, encoding="utf-8")
    return folder / MANIFEST


README = """chokepoint instance library: one LP per index, gzipped free MPS (instances/*.mps.gz).

Every file MINIMISES. manifest.csv says, per instance: the case's sense, the file's size and
its optimal objective (from chokepoint's own engine), the product's supply in tonnes and the
index. index = -objective / product_supply_t where sense is maximize (the file minimises
minus the touched tonnes), objective / product_supply_t where it is minimize.

    glpsol --freemps instances/NAME.mps.gz -w solution.txt
    cbc instances/NAME.mps.gz solve solu solution.txt
    highs instances/NAME.mps.gz      (or highspy: h.readModel(path); h.run())

chokepoint bench --instances THIS_FOLDER --solvers highspy glpk cbc  solves them all and
checks every objective against the manifest.
"""


def _size(path: Path) -> dict:
    """Rows, columns and non-zeros of an MPS file as HiGHS reads it."""
    h = _highs()
    if h.readModel(str(path)) != _ok():
        raise ChokepointError(f"{path}: HiGHS cannot read the file just written")
    return dict(rows=h.getNumRow(), columns=h.getNumCol(), nonzeros=h.getNumNz())


def _highs():
    import highspy

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)  # one thread, as glpsol and cbc, and as our engine
    return h


def _ok():
    import highspy

    return highspy.HighsStatus.kOk


# -- solving a library ---------------------------------------------------------------------


def read_manifest(folder: str | Path):
    """The manifest of an instance library, checked: one line naming what is wrong."""
    import pandas as pd

    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise ChokepointError(f"--instances {folder}: no {MANIFEST} there (write a library "
                              "with: chokepoint export-lp SCENARIO --all --out DIR)")
    try:
        df = pd.read_csv(path, keep_default_na=False, na_values=[""])
    except (ValueError, UnicodeDecodeError) as e:
        raise ChokepointError(f"{path}: not a manifest ({e})") from None
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise ChokepointError(f"{path}: no column {missing[0]!r}: not a chokepoint manifest")
    if df.empty:
        raise ChokepointError(f"{path}: no instance listed")
    for i, r in enumerate(df.itertuples(index=False), start=2):
        if not (folder / r.file).is_file():
            raise ChokepointError(f"{path}, line {i}: instance {r.instance}: file {r.file} "
                                  "is not there")
        if r.sense not in ("maximize", "minimize"):
            raise ChokepointError(f"{path}, line {i}: sense {r.sense!r} is neither maximize "
                                  "nor minimize")
        try:
            float(r.objective), float(r.product_supply_t)
        except (TypeError, ValueError):
            raise ChokepointError(f"{path}, line {i}: objective and product_supply_t must be "
                                  "numbers") from None
    return df


def unavailable(choice: SolverChoice) -> str | None:
    """Why this solver cannot solve instance files here, or None."""
    if choice.baseline or choice.name == "network":
        return f"{choice.name} solves chokepoint's networks, not LP files"
    if choice.name in PROGRAMS:
        return None if shutil.which(PROGRAMS[choice.name]) else \
            f"the program {PROGRAMS[choice.name]} is not on PATH"
    if choice.name == "highspy":
        return None
    return choice.unavailable()


def engine_of(choice: SolverChoice) -> str:
    if choice.name in PROGRAMS:
        return f"{PROGRAMS[choice.name]} (program)"
    if choice.name == "highspy":
        return "highspy (HiGHS reads the file)"
    return f"pyomo {choice.name} (the file's matrix as a Pyomo model)"


def bench_instances(folder: str | Path, solvers: list[SolverChoice], repeat: int = 1,
                    log=print) -> list[Row]:
    """Every instance of the library by every solver, ``repeat`` times (after one warm-up
    solve of the first instance); one row per solver whose measurements are the solves."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    out = []
    suite = f"instances {folder.name}"
    first = folder / manifest["file"].iloc[0]
    for choice in solvers:  # options a solver rejects: an error before anything is measured
        if unavailable(choice) is None:
            with tempfile.TemporaryDirectory(prefix="chokepoint-instances-") as tmp:
                _, status, _, _ = _solver(choice, Path(tmp))(first)
            if status.startswith("failed") and choice.options:
                raise ChokepointError(f"--solvers {choice.text}: {engine_of(choice)} fails "
                                      f"on {manifest['instance'].iloc[0]} with these options "
                                      f"({status[len('failed: '):]})")
    for choice in solvers:
        why = unavailable(choice)
        row = Row(suite=suite, solver=choice.name, formulation="file",
                  solver_options=",".join(f"{k}={v}" for k, v in choice.options.items())
                  or None, indices=len(manifest))
        if why:
            row.status = f"not available: {why}"
            out.append(row)
            log(f"{suite}: {choice.text}: not available here: {why}")
            continue
        row.solver_version = version_of(choice) if choice.name not in PROGRAMS else \
            _program_version(choice.name)
        log(f"{suite}: {choice.text}: {len(manifest)} instances x {repeat} ...")
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="chokepoint-instances-") as tmp:
            solve = _solver(choice, Path(tmp))
            solve(first)  # warm-up: imports, first call
            records, walls, worst = [], [], 0.0
            for r in range(1, repeat + 1):
                t_round = time.perf_counter()
                for m in manifest.itertuples(index=False):
                    seconds, status, objective, iterations = solve(folder / m.file)
                    index = None
                    if status == "ok":
                        want = float(m.objective)
                        diff = abs(objective - want) / max(abs(want), 1.0)
                        worst = max(worst, diff)
                        if diff > RELATIVE_TOL:
                            status = f"WRONG objective: manifest {want:.10g}"
                        sign = -1.0 if m.sense == "maximize" else 1.0
                        index = sign * objective / float(m.product_supply_t)
                    records.append(dict(
                        instance=m.instance, focal=m.focal, pair=m.pair, case=m.case,
                        repeat=r, seconds=seconds, engine=engine_of(choice),
                        iterations=iterations, status=status, objective=objective,
                        index=index))
                walls.append(time.perf_counter() - t_round)
        _attach(row, records)
        row.wall_s = statistics.median(walls)
        row.max_abs_diff_vi = worst  # here: the largest relative objective difference
        bad = [x for x in row.measurements if x.status != "ok"]
        if bad:
            row.status = (f"WRONG: {len(bad)} of {len(row.measurements)} solves not at the "
                          f"manifest's optimum (first: {bad[0].instance}: {bad[0].status})")
        log(f"{suite}: {choice.text}: {time.perf_counter() - t0:.1f} s"
            + (f"; {row.status}" if bad else ""))
        out.append(row)
    return out


def _program_version(name: str) -> str | None:
    program = PROGRAMS[name]
    try:
        r = subprocess.run([program, "--version"] if name == "glpk" else [program, "-quit"],
                           capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"(?:GLPK LP/MIP Solver|Version:)\s*v?([\d.]+)", r.stdout)
    return f"{program} {m.group(1)}" if m else None


def _solver(choice: SolverChoice, tmp: Path):
    """A function: file -> (seconds, status, objective, iterations)."""
    if choice.name == "highspy":
        return lambda path: _highspy(path, choice.options)
    if choice.name == "glpk":
        return lambda path: _glpsol(path, choice.options, tmp)
    if choice.name == "cbc":
        return lambda path: _cbc(path, choice.options, tmp)
    return lambda path: _pyomo(path, choice)


def _highspy(path: Path, options: dict):
    import highspy

    h = _highs()
    for k, v in options.items():
        if h.setOptionValue(k, v) != highspy.HighsStatus.kOk:
            return 0.0, f"failed: HiGHS rejects the option {k}={v!r}", None, None
    t = time.perf_counter()
    h.readModel(str(path))
    h.run()
    seconds = time.perf_counter() - t
    status = h.modelStatusToString(h.getModelStatus())
    info = h.getInfo()
    return (seconds, "ok" if status == "Optimal" else status, info.objective_function_value,
            info.simplex_iteration_count + info.ipm_iteration_count
            + info.crossover_iteration_count)


def _options_args(options: dict, dash: str = "") -> list[str]:
    """``key=value`` options as the program's command-line words: ``--key value`` for
    glpsol (``dash="--"``), ``key value`` for cbc; a value of true is the flag alone."""
    out = []
    for k, v in options.items():
        out += [dash + k] + ([] if v is True else [str(v)])
    return out


def _run(args: list[str]) -> tuple[float, subprocess.CompletedProcess | None]:
    t = time.perf_counter()
    try:
        r = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT_S,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return time.perf_counter() - t, None
    return time.perf_counter() - t, r


def _glpsol(path: Path, options: dict, tmp: Path):
    sol = tmp / "glpsol.txt"
    sol.unlink(missing_ok=True)
    seconds, r = _run(["glpsol", "--freemps", str(path), "-w", str(sol),
                       *_options_args(options, "--")])
    if r is None:
        return seconds, f"stopped: over {TIMEOUT_S:.0f} s", None, None
    # the solution file's status line: s bas ROWS COLS PRIMAL DUAL OBJECTIVE
    line = next((x for x in (sol.read_text().splitlines() if sol.is_file() else [])
                 if x.startswith("s bas")), None)
    # progress lines: '*   10: obj = ...' (simplex), '~    0: obj = ...' (presolver)
    steps = re.findall(r"^[*~]?\s*(\d+): obj", r.stdout, re.M)
    if r.returncode or line is None:
        last = ((r.stderr or r.stdout).strip().splitlines() or ["no output"])[-1]
        return seconds, f"failed: {last}", None, None
    _, _, _, _, primal, dual, objective = line.split()
    status = "ok" if primal == dual == "f" else f"not optimal (primal {primal}, dual {dual})"
    return seconds, status, float(objective), int(steps[-1]) if steps else None


def _cbc(path: Path, options: dict, tmp: Path):
    sol = tmp / "cbc.txt"
    sol.unlink(missing_ok=True)
    seconds, r = _run(["cbc", str(path), *_options_args(options), "solve", "solu", str(sol)])
    if r is None:
        return seconds, f"stopped: over {TIMEOUT_S:.0f} s", None, None
    unknown = re.search(r"No match for (\S+)", r.stdout)  # cbc ignores a word it lacks
    if unknown:
        return seconds, f"failed: cbc knows no parameter {unknown.group(1)!r}", None, None
    first = sol.read_text().splitlines()[0] if sol.is_file() else ""
    m = re.match(r"\s*(\w[\w ]*?) - objective value\s+(\S+)", first)
    if r.returncode or not m:
        return seconds, f"failed: {(first or r.stdout).strip()[:120]}", None, None
    steps = re.search(r"(\d+) iterations", r.stdout)
    return (seconds, "ok" if m.group(1) == "Optimal" else m.group(1).lower(),
            float(m.group(2)), int(steps.group(1)) if steps else None)


def _pyomo(path: Path, choice: SolverChoice):
    """The file's matrix (read by HiGHS) as a Pyomo model, solved by a Pyomo solver; the
    time is that of the solver's call only."""
    import numpy as np
    import pyomo.environ as pyo

    from ..lp.pyomo_engine import make_solver

    h = _highs()
    h.readModel(str(path))
    lp = h.getLp()
    inf = 1e30
    m = pyo.ConcreteModel()
    n = lp.num_col_
    lo, up = np.asarray(lp.col_lower_), np.asarray(lp.col_upper_)
    m.x = pyo.Var(range(n), bounds=lambda _, j: (None if lo[j] <= -inf else lo[j],
                                                 None if up[j] >= inf else up[j]))
    cost = np.asarray(lp.col_cost_)
    m.obj = pyo.Objective(expr=sum(cost[j] * m.x[j] for j in range(n) if cost[j])
                          + lp.offset_, sense=pyo.minimize)
    a = lp.a_matrix_
    start, index, value = np.asarray(a.start_), np.asarray(a.index_), np.asarray(a.value_)
    rows = [[] for _ in range(lp.num_row_)]
    for j in range(n):  # HiGHS keeps the matrix by columns
        for k in range(start[j], start[j + 1]):
            rows[index[k]].append((value[k], j))
    rlo, rup = np.asarray(lp.row_lower_), np.asarray(lp.row_upper_)
    m.c = pyo.Constraint(range(lp.num_row_), rule=lambda _, i: (
        None if rlo[i] <= -inf else rlo[i], sum(v * m.x[j] for v, j in rows[i]),
        None if rup[i] >= inf else rup[i]) if rows[i] else pyo.Constraint.Skip)
    from ..lp.pyomo_engine import APPSI_SOLVER

    opt = make_solver(choice.name, choice.options)
    t = time.perf_counter()
    try:
        if choice.name == APPSI_SOLVER:  # the persistent interface: its own results
            res = opt.solve(m)
            seconds = time.perf_counter() - t
            cond = res.termination_condition.name
            value = res.best_feasible_objective
        else:
            res = opt.solve(m, load_solutions=False)
            seconds = time.perf_counter() - t
            cond = str(res.solver.termination_condition)
            if cond == "optimal":
                m.solutions.load_from(res)
            value = pyo.value(m.obj) if cond == "optimal" else None
    except Exception as e:  # a solver's failure is this measurement's status
        return time.perf_counter() - t, f"failed: {type(e).__name__}: {e}"[:200], None, None
    if cond != "optimal":
        return seconds, cond, None, None
    return seconds, "ok", float(value), None

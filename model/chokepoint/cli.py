"""Command line: a thin layer over the public API. Errors print one line and exit non-zero."""

from __future__ import annotations

import argparse
import signal
import sys
import time

from .errors import STOP_SIGNAL, ChokepointError

EXIT_ERROR = 1


def _at_least(low: int):
    """An argparse type: an integer no smaller than ``low``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is below {low}")
        return value
    return parse


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="chokepoint",
        description="Vulnerability of EV battery cathode supply to one country or bloc "
                    "(Cheng et al. 2024) as an explicit Pyomo LP.",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("run", help="compute a scenario and write results/<name>/",
                       description="Compute the scenario (every variant and sample), print the "
                       "table and write the output folder (default results/<name>/): "
                       "vulnerability.csv, stage_contributions.csv, results.nc. A sweep's tasks "
                       "run on --workers processes or a Dask cluster, with a progress bar; each "
                       "finished task is saved, so an interrupted run re-run with the same --out "
                       "resumes.")
    r.add_argument("scenario", help="scenario YAML file")
    r.add_argument("--out", metavar="DIR", help="output folder (default results/<name>/)")
    _verbosity(r)
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument("--report", action="store_true", help="also write report.html and figures/")
    r.add_argument("--workers", type=int, metavar="N",
                   help="processes for a sweep's tasks, and for the bound cases of a large "
                   "network (500,000 arcs with highspy, a million with solver: network) "
                   "(default: every core)")
    r.add_argument("--dask", metavar="ADDR", help="run a sweep's tasks on Dask: 'local' (a "
                   "LocalCluster on this machine) or tcp://HOST:PORT (a running scheduler)")
    _scenario_options(r)

    rp = sub.add_parser("report", help="run a scenario and write results/<name>/report.html "
                        "(table, figures, scenario, provenance) and figures/")
    rp.add_argument("scenario", help="scenario YAML file")
    rp.add_argument("--out", metavar="DIR", help="output folder (default results/<name>/)")
    _verbosity(rp)
    rp.add_argument("--no-progress", action="store_true", help="no progress bar")
    rp.add_argument("--workers", type=int, metavar="N", help="as for run")
    rp.add_argument("--dask", metavar="ADDR", help="as for run")
    _scenario_options(rp)
    rp.set_defaults(report=True)

    rk = sub.add_parser("rank", help="every country (and bloc) of a year's networks as a focal "
                        "set, for every pair and case: a ranked table",
                        description="Every country of the year's networks (and every bloc of "
                        "--blocs) as a single focal set, five pairs, four cases: prints the top "
                        "--top per pair and writes ranking.csv.")
    rk.add_argument("--year", type=int, default=2020, help="year of the statistics "
                    "(default 2020)")
    rk.add_argument("--profile", default="paper", help="paper (default) or complete")
    rk.add_argument("--blocs", nargs="?", const="scenarios/blocs.yaml", metavar="FILE",
                    help="also rank the blocs of FILE (default scenarios/blocs.yaml)")
    rk.add_argument("--top", type=_at_least(1), default=10,
                    help="rows printed per pair (default 10)")
    rk.add_argument("--out", metavar="DIR", help="where ranking.csv goes "
                    "(default results/rank-<year>/)")

    nw = sub.add_parser("narrow", help="which intranational splits and uncertain sources drive "
                        "a focal set's band between the bounds")
    nw.add_argument("scenario", help="scenario YAML file (its networks and focal sets)")
    nw.add_argument("--focal", required=True, help="focal set label of the scenario")
    nw.add_argument("--pair", required=True, help="chemistry-material pair, e.g. NCM-cobalt")
    nw.add_argument("--top", type=_at_least(1), default=15, help="rows printed (default 15)")
    nw.add_argument("--out", metavar="FILE", help="also write the full table as CSV")

    v = sub.add_parser("validate", help="check a scenario and its networks without solving")
    v.add_argument("scenario", help="scenario YAML file")
    _scenario_options(v)

    d = sub.add_parser("data", help="import Trade Map downloads; check the statistics")
    dsub = d.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    imp = dsub.add_parser("import-trademap", help="compile a folder of Trade Map downloads "
                          "into the tidy trade table")
    imp.add_argument("folder", help="folder with one sub-folder per HS code")
    imp.add_argument("--out", metavar="FILE", help="default: data/trade_2017_2021.csv.gz (the "
                     "shipped table: replaced only with --force)")
    imp.add_argument("--force", action="store_true", help="replace the shipped table")
    chk = dsub.add_parser("check", help="coverage, trade, uncertain sources and balance per "
                          "material; fails on any imbalance")
    chk.add_argument("--year", type=int, default=2020, help="year of the statistics "
                     "(default 2020)")
    chk.add_argument("--profile", default="paper", help="paper (default) or complete")

    n = sub.add_parser("network", help="build a material's network from data/ and export it")
    n.add_argument("--material", required=True, help="lithium, cobalt, nickel or manganese")
    n.add_argument("--year", type=int, default=2020, help="year of the statistics "
                   "(default 2020)")
    n.add_argument("--profile", default="paper", help="paper (default) or complete")
    n.add_argument("--format", default="cheng-csv", dest="fmt",
                   help="cheng-csv (Source,Target,Value) or csv (with provenance)")
    n.add_argument("--out", required=True, metavar="FILE")

    ex = sub.add_parser("export-lp", help="write the exact LP of one index (focal set, pair, "
                        "case) as an MPS or LP file, or with --all every index's LP as an "
                        "instance library, for solvers chokepoint does not wrap")
    ex.add_argument("scenario", help="scenario YAML file (or a shipped scenario's name)")
    ex.add_argument("--all", action="store_true", help="every focal set x pair x case (and "
                    "sweep variant) as gzipped free MPS under --out DIR/instances/, with "
                    "DIR/manifest.csv (size, optimal objective, supply, index of each)")
    ex.add_argument("--focal", help="focal set label of the scenario")
    ex.add_argument("--pair", help="chemistry-material pair, e.g. LFP-lithium")
    ex.add_argument("--case", help="proportional, optimistic, pessimistic_a or "
                    "pessimistic_b")
    ex.add_argument("--format", choices=["mps", "lp"], dest="fmt",
                    help="default: from the file name's suffix (.mps, .lp), else mps")
    ex.add_argument("--out", required=True, metavar="FILE",
                    help="the file (with --all: the folder) to write")
    _scenario_options(ex)

    it = sub.add_parser("init", help="start a study: a commented scenario that runs as it is, "
                        "with a constraint family in Python (rules.py) and one in YAML, a "
                        "parameter sweep and an edit to start from, and the blocs file")
    it.add_argument("folder", help="where to put scenario.yaml, rules.py and blocs.yaml (made "
                    "if absent)")

    mt = sub.add_parser("math", help="print the LP's mathematics as Markdown with LaTeX (the "
                        "docs' page 'The LP' is this text), with a scenario's own constraint "
                        "families when given")
    mt.add_argument("scenario", nargs="?", help="scenario YAML file")
    _scenario_options(mt)

    b = sub.add_parser("bench", help="time a scenario's grid, or benchmark solvers on suites",
                       description="With a scenario: time its grid (model build per network, "
                       "per-LP solve median and p95, total). Otherwise benchmark solvers on "
                       "suites: build, per-index median and p95, wall, peak memory, agreement, "
                       "growth exponent; the rows are appended to bench.csv (and scale.png "
                       "drawn).")
    b.add_argument("scenario", nargs="?", help="scenario YAML file: time its grid with its own "
                   "solver (model build vs re-solves)")
    b.add_argument("--suite", choices=["paper", "ranking", "scale", "chain", "all"],
                   help="paper: 10 focal sets x 5 pairs x 4 cases; ranking: every country; "
                   "scale: synthetic networks of --sizes countries x 7 stages; chain: the whole "
                   "`chokepoint run` on a 7-stage chain read from a flows file (200 economies, "
                   "or --chain-sizes, or --flows FILE); all: the four (default when no "
                   "scenario is given: paper)")
    b.add_argument("--solvers", nargs="+", metavar="SOLVER",
                   help="any solver a scenario takes (highspy, network, every Pyomo solver: "
                   "appsi_*, *_direct, *_persistent, ...) or maxflow (the networkx baseline); "
                   "options after a colon: highspy:solver=ipm,presolve=off (default: highspy "
                   "network appsi_highs highs glpk cbc maxflow; missing ones get a row saying "
                   "so)")
    b.add_argument("--families", metavar="SCENARIO",
                   help="also time each suite with this scenario's user constraint families "
                   "on (formulation core+...), to measure an extension's cost")
    b.add_argument("--chain-sizes", nargs="+", type=_at_least(2), metavar="N", default=None,
                   help="chain suite: economies per chain (default 200)")
    b.add_argument("--flows", metavar="FILE", help="chain suite: time this flows file "
                   "(<material>_<year>.csv, published format) instead of a generated chain")
    b.add_argument("--sizes", nargs="+", type=_at_least(2), metavar="N", default=None,
                   help="scale suite: countries per synthetic network (default 25 50 100 200)")
    b.add_argument("--repeat", type=_at_least(1), default=3,
                   help="timed repeats after a warm-up")
    b.add_argument("--instances", metavar="DIR", help="solve every instance of the library "
                   "DIR (written by export-lp --all) with --solvers: highspy (HiGHS reads the "
                   "file), glpk and cbc (the programs glpsol and cbc), any other Pyomo solver "
                   "(on the file's matrix); each objective is checked against the manifest "
                   "(default solvers: highspy glpk cbc)")
    b.add_argument("--report", nargs="+", metavar="DIR", help="read the measurements of the "
                   "bench folders DIR... (one or more runs, several machines) and write "
                   "report.html with solved counts, shifted geometric means and performance "
                   "profiles per suite (into --out, default the first DIR's report/)")
    b.add_argument("--shift", type=float, default=None, metavar="MS",
                   help="--report: shift of the geometric means in ms (default 10)")
    b.add_argument("--out", metavar="DIR", help="the folder whose measurements.csv, bench.csv "
                   "and runs.csv the run is appended to (default results/bench/)")
    for group in (sub, dsub):  # each command's --help opens with what it does, as the docs do
        for action in group._choices_actions:
            cmd = group.choices[action.dest]
            cmd.description = cmd.description or action.help
    b.add_argument("--verbose", action="store_true", help=_VERBOSE)
    return p


_VERBOSE = "solvers' own logs on stderr (sets CHOKEPOINT_SOLVER_LOG=1); stdout stays the table"


def _verbosity(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quiet", action="store_true", help="print errors only: no table, notes, "
                   "progress or summary line")
    g.add_argument("--verbose", action="store_true", help=_VERBOSE)


def _scenario_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--extension", action="append", default=[], metavar="FILE",
                   help="also load the constraint families of this Python file or module "
                   "(repeatable; added to the scenario's extensions)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override a dotted scenario key, the value read as YAML, e.g. "
                   "--set parameters.capped_arcs.share=0.25 (repeatable)")


def _overrides(args) -> dict:
    """``--set`` and ``--extension`` as dotted-key overrides of the scenario."""
    import os

    import yaml

    out = {}
    for item in args.overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ChokepointError(f"--set {item!r}: expected KEY=VALUE, e.g. "
                                  "parameters.capped_arcs.share=0.25")
        try:
            out[key.strip()] = yaml.safe_load(text)
        except yaml.YAMLError:
            raise ChokepointError(f"--set {key}: {text!r} is not a YAML value") from None
    if args.extension:
        from .lp.extensions import is_file_ref
        from .runs.scenario import load_scenario

        existing = load_scenario(args.scenario).spec.extensions if args.scenario else []
        # files named on the command line are relative to where it runs
        added = [os.path.abspath(e) if is_file_ref(e) else e for e in args.extension]
        out["extensions"] = list(existing) + added
    return out


def _scenario(args):
    from .runs.scenario import load_scenario

    return load_scenario(args.scenario, _overrides(args))


def _run(args) -> int:
    from .phases import phase

    t = time.perf_counter()
    with phase("imports"):
        from .api import run

    if args.workers is not None and args.workers < 1:
        raise ChokepointError(f"--workers: expected a positive number, got {args.workers}")
    result = run(_scenario(args), out=args.out,
                 progress=False if args.no_progress or args.quiet else None,
                 workers=args.workers, dask=args.dask, report=args.report)
    if args.quiet:
        return 0
    print(result.table, end="")
    for note in result.notes:
        print(f"chokepoint: note: {note}", file=sys.stderr)
    n = len(result.indices.vulnerability)
    print(f"wrote {result.out_dir}/ ({n} indices, {time.perf_counter() - t:.2f} s)"
          + (f"; open {result.out_dir / 'report.html'}" if args.report else ""), file=sys.stderr)
    return 0


def _rank(args) -> int:
    from pathlib import Path

    from .publish import output_lock, staged

    from .focal import load_blocs
    from .runs.ranking import rank, render

    blocs = load_blocs(args.blocs) if args.blocs else None
    t = time.perf_counter()
    df = rank(args.year, args.profile, blocs)
    print(render(df, args.top), end="")
    folder = Path(args.out or f"results/rank-{args.year}")
    from .outputs import figures

    with output_lock(folder), staged(folder, {"command": "chokepoint rank"}) as tmp:
        df.to_csv(tmp / "ranking.csv", index=False, float_format="%.10g")
        countries_only = df[df["kind"] == "country"]
        for (chem, mat), _ in countries_only.groupby(["chemistry", "material"]):
            figures.save(figures.ranking(countries_only, chem, mat, args.top),
                         tmp / f"ranking_{chem}-{mat}")
    print(f"wrote {folder / 'ranking.csv'} ({len(df)} indices, "
          f"{time.perf_counter() - t:.2f} s)", file=sys.stderr)
    return 0


def _narrow(args) -> int:
    from .api import prepare
    from .chemistry import parse_pair
    from .errors import ScenarioError, did_you_mean
    from .runs.narrow import band_drivers, render

    scenario, networks, focal_sets = prepare(args.scenario)
    labels = {fs.label: fs for fs in focal_sets}
    if args.focal not in labels:
        raise ScenarioError(f"--focal: no focal set {args.focal!r} in {args.scenario}"
                            f"{did_you_mean(args.focal, list(labels))}")
    pair = parse_pair(args.pair, "--pair")
    if pair.material not in networks:
        raise ScenarioError(f"--pair: {args.scenario} has no {pair.material} network "
                            f"(its pairs: {', '.join(map(str, scenario.pairs))})")
    net = networks[pair.material]
    table = band_drivers(net, labels[args.focal].nodes(net), pair.chemistry,
                         scenario.spec.solver)
    print(render(table, args.focal, str(pair), args.top), end="")
    if args.out:
        from .publish import header_is, written

        with written(args.out, ours=header_is(",".join(map(str, table.columns)))) as tmp:
            table.to_csv(tmp, index=False, float_format="%.10g")
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _validate(args) -> int:
    from .api import prepare

    from .runs.sweep import make_tasks

    scenario, networks, focal_sets = prepare(_scenario(args))
    from .api import _check_variant_edits

    variants, samples, _ = make_tasks(scenario, scenario.blocs())
    _check_variant_edits(scenario, variants, networks)
    _check_solvers(scenario, variants)
    families, _, _ = scenario.user_families()
    extra = (f", {len(variants)} variants" if len(variants) > 1 else "") + \
        (f", {len(samples)} samples" if scenario.spec.sensitivity else "") + \
        (f", constraint families: {', '.join(f.name for f in families)}" if families else "")
    print(f"{args.scenario}: ok: {len(focal_sets)} focal sets, {len(scenario.pairs)} pairs, "
          f"{len(scenario.cases)} cases{extra}, networks: {', '.join(networks)}")
    return 0


def _check_solvers(scenario, variants) -> None:
    """Every solver the scenario names is installed here."""
    from .errors import SolverError
    from .lp import DEFAULT_SOLVER, NETWORK_SOLVER
    from .lp.pyomo_engine import make_solver

    for v in variants:
        name = v.spec.solver
        if name == NETWORK_SOLVER:
            from importlib.util import find_spec

            if find_spec("igraph") is None:  # installed; importing it is the engine's business
                raise SolverError("solver network needs python-igraph: pip install igraph")
        elif name != DEFAULT_SOLVER:
            try:
                make_solver(name, v.spec.solver_options)
            except SolverError as e:
                where = scenario.where(("solver",)) if not v.coords else \
                    f"{scenario.where(('sweep',))}: variant {v.label}"
                raise SolverError(f"{where}: {e}") from None


def _bench(args) -> int:
    from pathlib import Path

    from .bench.measurements import RunInfo, machine
    from .bench.suites import (DEFAULT_SOLVERS, SCALE_SIZES, SolverChoice, authors_comparison,
                               bench_scenario, bench_suites, chain_phases, check_outputs,
                               growth,
                               plot_scale, render_suites, solver_versions, write_run)

    if args.report:
        return _bench_report(args)
    if args.shift is not None:
        raise ChokepointError("bench --shift is for --report")
    out = Path(args.out or "results/bench")
    check_outputs(out)  # before anything is measured
    if args.scenario and (args.suite or args.solvers or args.families or args.instances):
        given = next(f"--{k}" for k in ("suite", "solvers", "families", "instances")
                     if getattr(args, k))
        raise ChokepointError(f"bench {args.scenario}: {given} is for the suites; a scenario "
                              "is timed with its own solver and families (set solver: in it)")
    command = "chokepoint " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["bench"] else \
        "chokepoint bench"
    if args.scenario:
        from .runs.scenario import load_scenario

        spec = load_scenario(args.scenario).spec
        report = bench_scenario(args.scenario, repeat=args.repeat)
        print(report.render())
        choice = SolverChoice(spec.solver, spec.solver, dict(spec.solver_options or {}))
        _, params, _ = load_scenario(args.scenario).user_families()
        info = RunInfo.now(args.repeat, command, solver_versions([choice]), args.scenario,
                           params)
        for path in write_run([report.row(spec.solver, spec.solver_options)], info, out):
            print(f"wrote {path}", file=sys.stderr)
        return 0
    default = ("highspy", "glpk", "cbc") if args.instances else DEFAULT_SOLVERS
    solvers = [SolverChoice.parse(s) for s in (args.solvers or default)]
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    if args.instances:
        if args.suite or args.families:
            raise ChokepointError("bench --instances: --suite and --families are for the "
                                  "suites; the library's files are the instances")
        from .bench.instances import bench_instances, read_manifest

        read_manifest(args.instances)  # before anything is measured
        info = RunInfo.now(args.repeat, command, solver_versions(solvers))
        print(f"machine: {machine()}; {args.repeat} timed repeat(s) after a warm-up solve; "
              f"run {info.run_id}", file=sys.stderr)
        results = bench_instances(args.instances, solvers, args.repeat, log=log)
        print(render_suites(results), end="")
        for path in write_run(results, info, out):
            print(f"wrote {path}", file=sys.stderr)
        return 1 if any(r.status.startswith("WRONG") for r in results) else 0
    suites = ["paper", "ranking", "scale", "chain"] if args.suite == "all" else \
        [args.suite or "paper"]
    params = {}
    if args.families:
        from .runs.scenario import load_scenario

        _, params, _ = load_scenario(args.families).user_families()
    info = RunInfo.now(args.repeat, command, solver_versions(solvers), args.families, params)
    print(f"machine: {machine()}; {args.repeat} timed repeat(s) after a warm-up, each solver "
          f"in a fresh process; run {info.run_id}", file=sys.stderr)
    results = bench_suites(suites, solvers, args.repeat, log=log,
                           sizes=tuple(args.sizes or SCALE_SIZES),
                           chain_sizes=tuple(args.chain_sizes or (200,)),
                           flows=Path(args.flows) if args.flows else None,
                           families_from=args.families)
    print(render_suites(results), end="")
    print(growth(results), end="")
    print(chain_phases(results), end="")
    for r in results:  # the authors timed the paper grid: compared there only
        if r.suite == "paper" and r.formulation == "core" and r.wall_s and r.status == "ok":
            print(f"{r.solver}: paper grid in {r.wall_s:.2f} s; {authors_comparison(r.wall_s)}")
    for path in [*write_run(results, info, out), *plot_scale(results, out / "scale")]:
        print(f"wrote {path}", file=sys.stderr)
    return 1 if any(r.status.startswith("DISAGREES") for r in results) else 0


def _bench_report(args) -> int:
    from pathlib import Path

    from .bench.report import DEFAULT_SHIFT_MS, write_report

    if args.scenario or args.suite or args.solvers or args.instances or args.families:
        given = next(f"--{k}" if k != "scenario" else args.scenario for k in
                     ("scenario", "suite", "solvers", "instances", "families")
                     if getattr(args, k))
        raise ChokepointError(f"bench --report reads measurements; {given} is for a run")
    shift = DEFAULT_SHIFT_MS if args.shift is None else args.shift
    if not (shift >= 0 and shift < float("inf")):
        raise ChokepointError(f"--shift: expected a finite number of ms >= 0, got {shift}")
    out = Path(args.out) if args.out else Path(args.report[0]) / "report"
    page = write_report([Path(d) for d in args.report], out, shift)
    print(f"wrote {page}", file=sys.stderr)
    return 0


def _data(args) -> int:
    from pathlib import Path

    from .statistics.inputs import TRADE_TABLE, Inputs, data_dir
    from .statistics.trademap import check_coverage, import_trademap, write_table

    if args.data_command == "check":
        from .statistics.check import data_check

        text, ok = data_check(args.year, args.profile)
        print(text, end="")
        return 0 if ok else EXIT_ERROR
    out = Path(args.out or data_dir() / TRADE_TABLE)
    shipped = (data_dir() / TRADE_TABLE).resolve()
    if out.resolve() == shipped and out.exists() and not args.force:
        raise ChokepointError(f"{out} is the shipped trade table: give --out FILE for a new "
                              "one, or --force to replace it")
    inputs = Inputs.load(2020)
    result = import_trademap(args.folder, inputs.preferred_names)
    check_coverage(result, inputs.all_codes(), inputs.importers())
    write_table(result.table, out)
    print(result.summary())
    print(f"wrote {out}", file=sys.stderr)
    return 0


def _network(args) -> int:
    from .statistics.inputs import Inputs
    from .statistics.mfa import build_network

    from .publish import check_ours, check_path, header_is, written

    check_path(args.out, folder=False)
    # a file in the published flows format carries no mark of who wrote it, and is never
    # replaced; the csv format's header (with provenance) is chokepoint's own
    ours = header_is("source,target,tonnes,provenance")
    check_ours(args.out, ours)
    net = build_network(args.material, Inputs.load(args.year), args.profile)
    with written(args.out, ours=ours) as tmp:
        net.to_csv(tmp, args.fmt)
    print(f"wrote {args.out} ({len(net.arcs)} arcs)", file=sys.stderr)
    return 0


def _export_lp(args) -> int:
    from .api import export_lp

    if args.all:
        given = next((f"--{k}" for k in ("focal", "pair", "case", "fmt") if getattr(args, k)),
                     None)
        if given:
            raise ChokepointError(f"export-lp --all: {given.replace('fmt', 'format')} is for "
                                  "one index; --all writes every index as MPS")
        from .bench.instances import export_all

        t = time.perf_counter()
        path = export_all(_scenario(args), args.out,
                          log=lambda m: print(m, file=sys.stderr, flush=True))
        print(f"wrote {path.parent}/ (instances/*.mps.gz and {path.name}, "
              f"{time.perf_counter() - t:.1f} s)", file=sys.stderr)
        return 0
    missing = [f"--{k}" for k in ("focal", "pair", "case") if not getattr(args, k)]
    if missing:
        raise ChokepointError(f"export-lp: {', '.join(missing)} needed (or --all for every "
                              "index)")

    info = export_lp(_scenario(args), args.focal, args.pair, args.case, args.out, args.fmt)
    minus = "-" if info["sense"] == "maximize" else ""
    print(f"wrote {args.out}: the LP of focal set {info['focal']!r}, pair {info['pair']}, case "
          f"{info['case']} ({info['sense']}s touched tonnes into the product; the file "
          f"minimises {minus or '+'}touched tonnes): index = {minus}objective / "
          f"{info['supply_t']:.17g} t", file=sys.stderr)
    return 0


def _init(args) -> int:
    from pathlib import Path

    from .publish import check_path, write_file
    from .shipped import scaffold_dir, scenarios_dir

    folder = check_path(args.folder)
    copies = {"scenario.yaml": scaffold_dir() / "scenario.yaml",
              "rules.py": scaffold_dir() / "rules.py",
              "blocs.yaml": scenarios_dir() / "blocs.yaml"}
    there = [n for n in copies if (folder / n).exists() or (folder / n).is_symlink()]
    if there:
        raise ChokepointError(f"{args.folder}: {', '.join(there)} already there; choose an "
                              "empty folder (nothing was changed)")
    folder.mkdir(parents=True, exist_ok=True)
    for name, source in copies.items():
        write_file(folder / name, source.read_text(encoding="utf-8"))
    scenario = Path(args.folder) / "scenario.yaml"
    print(f"wrote {scenario}, rules.py and blocs.yaml: a scenario with a rule in Python, one "
          f"in YAML, a parameter sweep and an edit to start from, each commented; run it with: "
          f"chokepoint run {scenario}")
    return 0


def _math(args) -> int:
    from .outputs.docs import math_markdown

    if args.scenario is None:
        if args.extension or args.overrides:
            raise ChokepointError("math: --extension and --set need a scenario file")
        print(math_markdown(), end="")
        return 0
    from .api import prepare

    scenario, _, _ = prepare(_scenario(args))  # the networks, to count each family's rows
    families, parameters, _ = scenario.user_families()
    print(math_markdown(families, parameters, scenario.family_rows), end="")
    return 0


def _commands(parser: argparse.ArgumentParser, prefix: str = "chokepoint"):
    """Every command a user types, ``(words, parser, help)``: ``data`` stands for its actions."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {c.dest: c.help for c in sub._choices_actions}
    for name, cmd in sub.choices.items():
        if any(isinstance(a, argparse._SubParsersAction) for a in cmd._actions):
            yield from _commands(cmd, f"{prefix} {name}")
        else:
            yield f"{prefix} {name}", cmd, helps.get(name) or cmd.description or ""


def _options(parser: argparse.ArgumentParser) -> list[tuple[str, str]]:
    """A command's arguments as ``--help`` writes them (``--out DIR``), with their help."""
    formatter = parser._get_formatter()
    return [(formatter._format_action_invocation(a), a.help or "")
            for a in parser._actions
            if a.dest != "help" and not isinstance(a, argparse._SubParsersAction)]


def reference() -> str:
    """Every command and option of ``chokepoint``, from its argument parser: the one source of
    ``--help`` and of the docs' command-line page."""
    parser = _parser()
    commands = list(_commands(parser))
    cell = lambda text: text.replace("|", "/")  # noqa: E731
    out = ["| command | what it does |", "|---|---|"]
    out += [f"| [`{words}`](#{words.replace(' ', '-')}) | {cell(text)} |"
            for words, _, text in commands]
    out += ["", "Before any command: " + "; ".join(
        f"`{flag}`: {text}" for flag, text in _options(parser)) + ".", ""]
    for words, cmd, text in commands:
        out += [f"### `{words}`", "", cmd.description, "", "```text",
                cmd.format_usage().strip(), "```", "", "| argument | meaning |", "|---|---|"]
        out += [f"| `{flag}` | {cell(help_)} |" for flag, help_ in _options(cmd)]
        out.append("")
    return "\n".join(out) + "\n"


class _Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: tasks stop, saved parts stay."""


def _on_signal(signum, frame) -> None:
    STOP_SIGNAL.append(signum)
    raise _Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _logging(quiet: bool) -> None:
    """Notes of the library (resumed parts, discarded parts) as ``chokepoint: note:`` lines;
    with ``--quiet`` none (errors reach the user as exceptions, one line each)."""
    import logging

    log = logging.getLogger("chokepoint")
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("chokepoint: note: %(message)s"))
        log.addHandler(handler)
        log.propagate = False
    log.setLevel(logging.ERROR if quiet else logging.INFO)
    if quiet:
        import warnings

        warnings.simplefilter("ignore")


def _without_dask() -> None:
    """Tell this process that Dask is absent. xarray asks whether each array it wraps is a
    Dask array, and to answer imports dask.array when Dask is installed (and distributed when
    it writes a netCDF file): 0.4-0.5 s and a slower exit for a run that has no Dask array.
    ``None`` in ``sys.modules`` is Python's own way of saying a module cannot be imported;
    xarray treats Dask as an optional library it does not have. Only the command's own process
    does this, and only without ``--dask``: in a user's Python session (``main()`` called from
    Python included) nothing is hidden."""
    if "dask" not in sys.modules:
        sys.modules["dask"] = None


def main(argv: list[str] | None = None, own_process: bool = False) -> int:
    """Run one command; ``own_process``: the process is the command's own (the console script,
    ``python -m chokepoint.cli``), so it may mark Dask absent (see :func:`_without_dask`)."""
    started = time.time()
    try:
        return _main(argv, own_process)
    finally:
        from . import phases

        phases.dump(started)


def _main(argv: list[str] | None, own_process: bool) -> int:
    args = _parser().parse_args(argv)
    commands = {"run": _run, "report": _run, "rank": _rank, "narrow": _narrow,
                "validate": _validate, "bench": _bench, "math": _math, "data": _data,
                "network": _network, "init": _init, "export-lp": _export_lp}
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    # A worker stopped mid-task leaves a lock Pyomo made in it to multiprocessing's resource
    # tracker, which removes it and says so on stderr; the run has said what happened. The
    # tracker takes its warning filters from these options when it starts.
    sys.warnoptions.append("ignore:resource_tracker:UserWarning")
    _logging(getattr(args, "quiet", False))
    if getattr(args, "verbose", False):
        import os

        os.environ["CHOKEPOINT_SOLVER_LOG"] = "1"  # read by the engines, in workers too
    if own_process and getattr(args, "dask", None) is None:
        _without_dask()
    try:
        return commands[args.command](args)
    except KeyboardInterrupt as e:
        return _stopped(e)
    except ChokepointError as e:
        if STOP_SIGNAL:  # an error raised while a signal unwound the work
            return _stopped(e)
        if args.debug:
            raise
        print(f"chokepoint: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as e:  # the user's file system: say which path and why, in one line
        if STOP_SIGNAL:
            return _stopped(e)
        if args.debug:
            raise
        from .publish import os_error

        print(f"chokepoint: error: {os_error(e)}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as e:  # a bug of ours: still one line, with a way to see more
        if STOP_SIGNAL:
            return _stopped(e)
        if args.debug:
            raise
        print(f"chokepoint: internal error: {type(e).__name__}: {e} (rerun with --debug)",
              file=sys.stderr)
        return EXIT_ERROR


def _stopped(e: BaseException) -> int:
    """Ctrl-C or SIGTERM: one line saying what was kept; exit 130 or 143."""
    from .runs.sweep import interrupted_message

    kept = getattr(e, "saved", None)
    what = interrupted_message(kept, e.total, e.written) if kept is not None \
        else "nothing written"
    terminated = (STOP_SIGNAL and STOP_SIGNAL[0] == signal.SIGTERM) or isinstance(e, _Terminated)
    print(f"chokepoint: {'terminated' if terminated else 'interrupted'}; {what}",
          file=sys.stderr)
    return 143 if terminated else 130


def console() -> None:
    """The ``chokepoint`` command: :func:`main`, then exit without the interpreter's teardown.

    By the time ``main`` returns, every file the command wrote is closed and published, and
    the exit handlers (logging, multiprocessing, libraries' ``atexit``) run here as usual; what
    is skipped is the interpreter freeing every module and object one by one, 0.3-0.4 s of a
    run that imported pandas, xarray and scipy (0.25 s of a 1 s paper run; mypy exits the same
    way). Only when no other thread is still running: a non-daemon thread is waited for by a
    normal exit, so the command then takes that way."""
    import atexit
    import os
    import threading

    code = main(own_process=True)
    others = [t for t in threading.enumerate()
              if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    if others:
        sys.exit(code)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe: nothing more can be said
        code = code or EXIT_ERROR
    atexit._run_exitfuncs()
    os._exit(code)


if __name__ == "__main__":
    console()

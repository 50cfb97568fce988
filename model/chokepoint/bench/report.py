"""The field's summaries of benchmark measurements (``chokepoint bench --report DIR ...``).

Per suite, a *competitor* is one solver (with its options and formulation) of one run; with
several runs (machines, versions) each run's solvers are separate competitors, labelled with
their run id. An instance's time is the median of its repeats; an instance a competitor did
not solve (status other than ``ok``) has no time. Measurements of indices answered without an
LP (a focal set owning no node of the network) are left out.

- Solved counts per competitor.
- Shifted geometric means of the time per instance (Mittelmann's benchmarks):
  ``exp(mean(log(t + s))) - s`` with the shift ``s`` stated (default 10 ms), over the instances
  every competitor of the suite solved, and as a ratio to the fastest.
- Dolan-More performance profiles: for each competitor the fraction of instances it solved
  within a factor tau of the fastest competitor on that instance, against tau (log2 axis),
  as PNG and SVG, on an HTML page beside them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ChokepointError
from .measurements import MEASUREMENTS, RUNS, Measurement, RunInfo, columns

DEFAULT_SHIFT_MS = 10.0
REPORT = "report.html"


def read_measurements(folders: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The measurements and run metadata of the bench folders (each run once)."""
    ms, runs = [], []
    for folder in folders:
        path = folder / MEASUREMENTS
        if not path.is_file():
            raise ChokepointError(f"--report {folder}: no {MEASUREMENTS} there (a folder "
                                  "`chokepoint bench --out` wrote)")
        try:
            m = pd.read_csv(path, dtype={"run_id": str})
        except (ValueError, UnicodeDecodeError) as e:
            raise ChokepointError(f"{path}: cannot be read as CSV ({e})") from None
        if list(m.columns) != columns(Measurement):
            raise ChokepointError(f"{path} has other columns than a measurements.csv")
        ms.append(m)
        if (folder / RUNS).is_file():
            r = pd.read_csv(folder / RUNS, dtype={"run_id": str})
            if list(r.columns) == columns(RunInfo):
                runs.append(r)
    m = pd.concat(ms, ignore_index=True).drop_duplicates()
    r = pd.concat(runs, ignore_index=True).drop_duplicates("run_id") if runs else \
        pd.DataFrame(columns=columns(RunInfo))
    r = r[r["run_id"].isin(set(m["run_id"]))]
    if m.empty:
        raise ChokepointError(f"--report: no measurement in {', '.join(map(str, folders))}")
    return m, r


def competitors(m: pd.DataFrame) -> pd.Series:
    """Each measurement's competitor label: solver[:options][ [formulation]][ @run]."""
    several = m["run_id"].nunique() > 1
    label = m["solver"].astype(str)
    opts = m["solver_options"].fillna("").astype(str)
    label = label.where(opts == "", label + ":" + opts)
    form = m["formulation"].astype(str)
    label = label.where(form.isin(["core", "file", "scenario"]), label + " [" + form + "]")
    return label + (" @" + m["run_id"].astype(str) if several else "")


def times(m: pd.DataFrame) -> pd.DataFrame:
    """instance x competitor: median seconds of the solved repeats (NaN: not solved)."""
    m = m[~m["status"].astype(str).str.startswith("not solved")].copy()
    m["competitor"] = competitors(m)
    ok = m[m["status"] == "ok"]
    # an instance counts as solved by a competitor when every repeat of it was
    failed = m[m["status"] != "ok"].groupby(["instance", "competitor"]).size()
    t = ok.groupby(["instance", "competitor"])["seconds"].median().unstack("competitor")
    t = t.reindex(index=sorted(m["instance"].unique()),
                  columns=list(dict.fromkeys(m["competitor"])))
    for inst, comp in failed.index:
        t.loc[inst, comp] = np.nan
    return t


def shifted_geometric_mean(seconds: np.ndarray, shift_ms: float) -> float:
    """exp(mean(log(t + s))) - s in milliseconds."""
    ms = np.asarray(seconds, dtype=float) * 1000.0
    return float(np.exp(np.mean(np.log(ms + shift_ms))) - shift_ms)


def summary(t: pd.DataFrame, shift_ms: float) -> pd.DataFrame:
    """Solved counts and shifted geometric means over the instances solved by every
    competitor that solved any (one that solved none would leave no instance to compare)."""
    common = t[[c for c in t.columns if t[c].notna().any()]].dropna()
    sgm = {c: shifted_geometric_mean(common[c].to_numpy(), shift_ms)
           if len(common) and c in common else np.nan for c in t.columns}
    best = np.nanmin(list(sgm.values())) if any(np.isfinite(v) for v in sgm.values()) \
        else np.nan
    return pd.DataFrame({
        "competitor": t.columns,
        "instances": len(t),
        "solved": [int(t[c].notna().sum()) for c in t.columns],
        f"shifted geometric mean ms (shift {shift_ms:g} ms, {len(common)} instances "
        "solved by all)": [sgm[c] for c in t.columns],
        "ratio to the fastest": [sgm[c] / best if best and best > 0 else np.nan
                                 for c in t.columns]})


def profile(t: pd.DataFrame) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Dolan-More: tau values and, per competitor, the fraction of instances within tau of the
    fastest on each instance (an unsolved instance is never within)."""
    best = t.min(axis=1, skipna=True)
    ratios = t.div(best, axis=0)  # NaN where unsolved (or nobody solved it)
    finite = ratios.to_numpy()[np.isfinite(ratios.to_numpy())]
    top = max(2.0, float(finite.max()) * 1.05) if finite.size else 2.0
    taus = np.unique(np.concatenate([[1.0], np.sort(finite), [top]]))
    n = len(t)
    return taus, {c: np.array([(ratios[c] <= tau).sum() / n for tau in taus])
                  for c in t.columns}


def plot_profile(t: pd.DataFrame, title: str, path: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..outputs.figures import save

    taus, rho = profile(t)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    for c, y in rho.items():
        ax.step(taus, y, where="post", label=c)
    ax.set(xscale="log", xlabel="tau: time within this factor of the fastest on the instance",
           ylabel="fraction of instances", ylim=(0, 1.02), xlim=(1, taus[-1]),
           title=f"Performance profile: {title} ({len(t)} instances)")
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.set_xscale("log", base=2)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return save(fig, path)


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Chokepoint solver benchmark</title>
<style>
 body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
 table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.92em; }
 th, td { border: 1px solid #ddd; padding: 3px 6px; text-align: right; }
 td:first-child, th:first-child { text-align: left; } img { max-width: 100%; }
 td { max-width: 24em; overflow-wrap: anywhere; }
</style></head><body>
<h1>Solver benchmark</h1>
<p>Runs: {{ runs|length }}; measurements of {{ folders }}. An instance's time is the median of
its repeats; shifted geometric means use a shift of {{ shift }} ms over the instances every
competitor of the suite solved; the performance profile (Dolan and More 2002) shows for each
competitor the fraction of instances solved within a factor tau of the fastest.</p>
<h2>Runs</h2>
{{ runs_table }}
{% for s in suites %}
<h2 id="{{ s.id }}">Suite: {{ s.name }}</h2>
{{ s.table }}
<p><img src="{{ s.png }}" alt="Performance profile of {{ s.name }}">
(<a href="{{ s.svg }}">SVG</a>)</p>
{% endfor %}
</body></html>
"""


def write_report(folders: list[Path], out: Path, shift_ms: float = DEFAULT_SHIFT_MS) -> Path:
    """report.html and a profile (PNG, SVG) per suite in the folder ``out`` (replaced whole,
    only if chokepoint made it)."""
    import re

    import jinja2

    from ..publish import check_output, output_lock, staged

    m, runs = read_measurements(folders)
    out = check_output(out)
    suites = []
    with output_lock(out), staged(out, {"command": "chokepoint bench --report"}) as tmp:
        for suite, block in m.groupby("suite", sort=False):
            t = times(block)
            if t.empty or t.notna().sum().sum() == 0:
                continue
            slug = re.sub(r"[^A-Za-z0-9_-]+", "_", suite)
            files = plot_profile(t, suite, tmp / f"profile_{slug}")
            table = summary(t, shift_ms)
            table.to_csv(tmp / f"summary_{slug}.csv", index=False, float_format="%.6g")
            suites.append(dict(name=suite, id=slug, png=files[0].name, svg=files[1].name,
                               table=jinja2.utils.markupsafe.Markup(table.to_html(
                                   index=False, float_format=lambda x: f"{x:.3g}"))))
        keep = [c for c in ("run_id", "date", "chokepoint", "git_commit", "os", "cpu_model",
                            "cpu_count", "memory_gib", "load_1m", "repeats", "solver_versions")
                if c in runs.columns]
        page = jinja2.Template(PAGE, autoescape=True).render(
            runs=runs, folders=", ".join(map(str, folders)), shift=f"{shift_ms:g}",
            runs_table=jinja2.utils.markupsafe.Markup(runs[keep].to_html(index=False)),
            suites=suites)
        (tmp / REPORT).write_text(page, encoding="utf-8")
    return out / REPORT

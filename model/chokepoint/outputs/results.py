"""Labelled results: an xarray Dataset with units and case descriptions, tidy CSVs, and the
printed table in the shape of the paper's Table 2. A run's folder is published whole."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import xarray as xr

from ..cases import CASES, Case
from ..chemistry import CHEMISTRY_ORDER, MATERIALS, pair_key, pair_label
from ..focal import STAGE_STEPS
from ..index import AGGREGATE, Indices
from ..network import Network
from ..publish import staged
from ..runs.sweep import swept_name

VULNERABILITY_CSV = "vulnerability.csv"
STAGES_CSV = "stage_contributions.csv"
DATASET_NC = "results.nc"
SENSITIVITY_CSV = "sensitivity_summary.csv"


def to_dataset(indices: Indices, attrs: dict | None = None, variants=None, samples=None,
               quantiles=None) -> xr.Dataset:
    """Both tables in one Dataset with dims ([variant,] [sample,] focal, chemistry, material,
    case[, stage]); a sweep's variants carry their swept values as coordinates, samples their
    factors, and ``vi_quantile`` summarises the drawn samples."""
    lead = [k for k in ("variant", "sample") if k in indices.vulnerability.columns]
    keys = lead + ["focal", "chemistry", "material", "case"]
    vi = indices.vulnerability.set_index(keys)["vi"].to_xarray()
    data = {"vi": vi}
    if not indices.stages.empty:
        data["vi_cumulative"] = indices.stages.set_index(keys + ["stage"])[
            "vi_cumulative"].to_xarray()
    ds = xr.Dataset(data)
    order = {
        "focal": list(dict.fromkeys(indices.vulnerability["focal"])),
        "chemistry": [c for c in CHEMISTRY_ORDER if c in set(ds.chemistry.values)],
        "material": [m for m in [*MATERIALS, AGGREGATE] if m in set(ds.material.values)],
        "case": [c.value for c in Case if c.value in set(ds.case.values)],
    }
    if "stage" in ds.dims:
        order["stage"] = [s for s, _ in STAGE_STEPS]
    ds = ds.reindex(order)
    ds["vi"].attrs.update(
        long_name="vulnerability index",
        units="1",
        description="Share of the chemistry's cathode output, by contained element, made with "
        "material that the focal set mined, refined, made into cathode or traded. "
        f"material={AGGREGATE!r}: maximum over the chemistry's materials (scarcest binds).",
    )
    if "vi_cumulative" in ds:
        ds["vi_cumulative"].attrs.update(
            long_name="cumulative vulnerability index by stage",
            units="1",
            description="VI with the focal set counted at the cathode stage only (cathode), "
            "then at cathode and refining (refining), then at every stage (mining).",
        )
        ds["stage"].attrs["description"] = "cumulative from the cathode stage upstream"
    for c in ds.case.values:
        spec = CASES[Case(c)]
        ds["case"].attrs[f"{c}"] = f"{spec.title}: {spec.description}"
    ds["case"].attrs["description"] = "case of the index; each case's definition is an attr"
    ds["material"].attrs["description"] = (
        f"material of the network; {AGGREGATE!r} is the chemistry aggregate")
    if variants is not None:
        ds = ds.assign_coords(variant_label=("variant", [v.label for v in variants]))
        ds["variant"].attrs["description"] = "sweep variant; its swept values are coordinates"
        for key in dict.fromkeys(k for v in variants for k in v.coords):
            raw = [v.values.get(key) for v in variants]
            numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in raw)
            flags = all(isinstance(x, bool) for x in raw)  # families.NAME: on or off
            ds = ds.assign_coords({swept_name(key): (
                "variant", [float(x) for x in raw] if numeric else list(raw) if flags else
                [v.coords.get(key, "") for v in variants])})
    if samples is not None:
        for j, p in enumerate(samples.parameters):
            name = p.name if p.family else f"factor_{p.name}"
            ds = ds.assign_coords({name: ("sample", samples.factors[:, j])})
            ds[name].attrs.update(
                units="as declared by the family" if p.family else "1",
                description=(f"value of the constraint family parameter {p.family}, "
                             f"{p.distribution} on [{p.low}, {p.high}], central {p.central}")
                if p.family else (f"factor on the central {p.name} fraction, "
                                  f"{p.distribution} on [{p.low}, {p.high}]"))
        ds["sample"].attrs["description"] = (
            "sensitivity sample; 0 is the central point (every factor 1), 1.. are drawn")
        if quantiles:
            drawn = ds["vi"].sel(sample=ds["sample"] > 0)
            ds["vi_quantile"] = drawn.quantile(quantiles, dim="sample")
            ds["vi_quantile"].attrs.update(units="1", description="quantiles of vi over the "
                                           "drawn samples (sample 0 excluded)")
    ds.attrs.update({k: (v if isinstance(v, (str, int, float)) else json.dumps(v))
                     for k, v in (attrs or {}).items()})
    ds.attrs.setdefault("units", "vi: fraction (0-1) of contained-element tonnes")
    return ds


def write(indices: Indices, ds: xr.Dataset, out_dir: str | Path, extra=None,
          marker: dict | None = None) -> Path:
    """Write the CSVs and ``results.nc`` as the folder ``out_dir``, all at once.

    The whole folder is built aside on the target's file system and swapped in as one step
    (:func:`chokepoint.publish.staged`): no file of an earlier run survives beside the new
    ones, and a failure leaves the earlier folder as it was.
    """
    with staged(out_dir, marker) as tmp:
        paper_order(indices.vulnerability).to_csv(tmp / VULNERABILITY_CSV, index=False,
                                                  float_format="%.10g")
        if not indices.stages.empty:
            paper_order(indices.stages).to_csv(tmp / STAGES_CSV, index=False,
                                               float_format="%.10g")
        # HDF5 crashes the process when the disk fills under it: build the file in memory,
        # then write its bytes with Python, which raises a plain "no space left" instead
        image = io.BytesIO()
        ds.to_netcdf(image, engine="h5netcdf")
        (tmp / DATASET_NC).write_bytes(image.getvalue())
        if "vi_quantile" in ds:
            ds["vi_quantile"].to_dataframe().reset_index().to_csv(
                tmp / SENSITIVITY_CSV, index=False, float_format="%.10g")
        if extra is not None:  # more files (the report), written before anything is moved
            extra(tmp)
    return Path(out_dir)


def warnings_for(ds: xr.Dataset, networks: dict[str, Network], focal_nodes) -> list[str]:
    """What a domain expert needs to know before reading the numbers: a focal set that owns no
    node of a network (its indices there are 0 by construction), and a pessimistic B pinned at
    100% by uncertain sources alone."""
    out = []
    for label, per_material in focal_nodes.items():
        empty = [m for m, nodes in per_material.items() if not nodes and m in networks]
        if empty:
            out.append(f"{label} owns no node of the {', '.join(empty)} network"
                       f"{'s' if len(empty) > 1 else ''}: its indices there are 0 by "
                       "construction, not a finding.")
    variants = range(ds.sizes["variant"]) if "variant" in ds.dims else [None]
    found = {v: _pinned(ds if v is None else ds.isel(variant=v)) for v in variants}
    texts = {v: "; ".join(f"{f}: {', '.join(p)}" for f, p in pinned.items())
             for v, pinned in found.items() if pinned}
    lead = ("pessimistic B is 100% only because uncertain sources (data gaps) may carry the "
            "focal set's material, where pessimistic A is below: ")
    tail = ". Read these as 'the data cannot rule it out'."
    if texts and len(set(texts.values())) == 1 and len(texts) == len(found):
        out.append(lead + next(iter(texts.values())) + tail)  # the same in every variant
    else:
        for v, text in texts.items():
            out.append(lead + f"variant {v}: " + text + tail)
    return out


def _pinned(ds: xr.Dataset) -> dict[str, list[str]]:
    """{focal set: ["LFP-Li (A 93%)", ...]}: pairs whose pessimistic B is 100% while A is not,
    in the central sample."""
    vi = ds["vi"].isel(sample=0) if "sample" in ds["vi"].dims else ds["vi"]
    pinned: dict[str, list[str]] = {}
    if not {"pessimistic_a", "pessimistic_b"} <= set(map(str, vi.case.values)):
        return pinned
    a = vi.sel(case="pessimistic_a").drop_sel(material=AGGREGATE, errors="ignore")
    b = vi.sel(case="pessimistic_b").drop_sel(material=AGGREGATE, errors="ignore")
    hits = ((b >= 0.9999) & (a < 0.999)).to_series()  # NaN (pair not run) compares False
    hits = hits[hits].index.tolist()
    for focal in map(str, vi.focal.values):
        for c, m in sorted(((c, m) for f, c, m in hits if f == focal),
                           key=lambda p: pair_key(*p)):
            share = float(a.sel(focal=focal, chemistry=c, material=m))
            pinned.setdefault(focal, []).append(f"{pair_label(c, m)} (A {100 * share:.0f}%)")
    return pinned


def paper_order(df: pd.DataFrame) -> pd.DataFrame:
    """Rows by variant and sample, then pairs in the paper's order and the four cases in
    theirs; focal sets keep the scenario's order (a stable sort)."""
    keys = pd.DataFrame({
        "variant": df["variant"] if "variant" in df else 0,
        "sample": df["sample"] if "sample" in df else 0,
        "pair": [pair_key(c, m) for c, m in zip(df["chemistry"], df["material"])],
        "case": df["case"].map({c.value: i for i, c in enumerate(Case)}) if "case" in df
        else 0}, index=df.index)
    return df.loc[keys.sort_values(list(keys.columns), kind="stable").index]


def families_text(families: list[dict], head: str, none: bool = False) -> str:
    """Lines naming the user constraint families of a run (records as results.nc keeps them:
    ``title`` and ``call``, ``name(p=v, ...)``), or ``none`` says there are none."""
    if not families:
        return f"{head}: none (the core method only)\n" if none else ""
    indent = " " * (len(head) - len(head.lstrip()) + 2)
    return (f"{head}:\n" + "".join(
        f"{indent}{f['title']}: {f.get('call') or f['name']}\n" for f in families)
            + ("" if none else "\n"))


def table(vulnerability: pd.DataFrame) -> str:
    """The paper's Table 2 shape: per focal set, pairs as rows, cases as columns, percent."""
    df = vulnerability.copy()
    df["pair"] = [pair_label(c, m) for c, m in zip(df["chemistry"], df["material"])]
    df["order"] = [pair_key(c, m) for c, m in zip(df["chemistry"], df["material"])]
    df = df.sort_values("order", kind="stable")
    cases = [c.value for c in Case if c.value in set(df["case"])]
    heads = {c: CASES[Case(c)].title.split(" (")[0] for c in cases}
    out = []
    for focal, block in df.groupby("focal", sort=False):
        wide = block.pivot_table(index="pair", columns="case", values="vi", sort=False)
        wide = wide[cases] * 100
        width = max(6, *(len(p) for p in wide.index))
        out.append(f"{focal}: vulnerability index, % of cathode output")
        out.append(f"  {'pair':<{width}}" + "".join(f"{heads[c]:>15}" for c in cases))
        for pair, row in wide.iterrows():
            out.append(f"  {pair:<{width}}" + "".join(f"{row[c]:>15.1f}" for c in cases))
        out.append("")
    return "\n".join(out).rstrip() + "\n"

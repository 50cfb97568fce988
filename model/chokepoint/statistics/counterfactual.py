"""Counterfactual edits of the statistics, applied before the material-flow step.

An edit changes the inputs (production, trade, fractions); the network is then rebuilt by the
same rules, so it stays balanced. Kinds (units: tonnes of contained element, factors unitless):

==================  ===========================================================================
``scale_production``  multiply a country's output at a stage (mining, refining, cathode)
``move_production``   move a share of a country's output at a stage to others, pro rata to their
                      own output (equally where none has any)
``recycling``         a recycler owned by ``owner`` feeds ``tonnes`` of recovered material into
                      the refining of ``into``, whose refining output grows by as much
``scale_trade``       multiply (0: remove) the trade from ``exporter`` to ``importer``
``set_fraction``      set or scale an HS code's contained fraction, or a chemistry's mass
                      fraction of a material
==================  ===========================================================================
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .. import countries
from ..chemistry import MATERIALS
from ..errors import ChokepointError, did_you_mean
from .inputs import Inputs

STAGES = ("mining", "refining", "cathode")


class EditError(ChokepointError):
    """An edit that does not fit the statistics (unknown country, code, material...)."""


class _Edit(BaseModel):
    # a number that is not finite would reach the statistics as NaN or inf: refused here
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    def describe(self) -> str:
        fields = ", ".join(f"{k}={v}" for k, v in self.model_dump(exclude_none=True).items()
                           if k != "kind")
        return f"{self.kind}({fields})"


class ScaleProduction(_Edit):
    kind: Literal["scale_production"]
    country: str = Field(description="Country whose output changes.")
    stage: Literal["mining", "refining", "cathode"]
    factor: float = Field(ge=0, description="Multiplier (0 removes the output).")
    material: str | None = Field(None, description="Mining/refining: one material (default all).")
    chemistry: str | None = Field(None, description="Cathode: one chemistry (default all).")


class MoveProduction(_Edit):
    kind: Literal["move_production"]
    from_: str = Field(alias="from", description="Country giving up output.")
    to: list[str] = Field(min_length=1, description="Countries receiving it, pro rata.")
    stage: Literal["mining", "refining", "cathode"]
    share: float = Field(gt=0, le=1, description="Share of the output moved.")
    material: str | None = None
    chemistry: str | None = None
    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)


class Recycling(_Edit):
    kind: Literal["recycling"]
    owner: str = Field(description="Country owning the recycler.")
    into: str | None = Field(None, description="Country refining the recovered material "
                             "(default: the owner).")
    material: str
    tonnes: float = Field(gt=0, description="Recovered material, t contained element.")


class ScaleTrade(_Edit):
    kind: Literal["scale_trade"]
    exporter: str
    importer: str
    factor: float = Field(ge=0, description="Multiplier (0 removes the link).")
    material: str | None = Field(None, description="Only this material's codes (default all).")


class SetFraction(_Edit):
    kind: Literal["set_fraction"]
    code: str | None = Field(None, description="HS code whose contained fraction changes.")
    chemistry: str | None = Field(None, description="Cathode chemistry (with material).")
    material: str | None = None
    value: float | None = Field(None, gt=0, le=1, description="New fraction.")
    factor: float | None = Field(None, gt=0, description="Or: multiply the fraction.")

    @model_validator(mode="after")
    def _one_target(self):
        if (self.code is None) == (self.chemistry is None):
            raise ValueError("give either code (contained fraction) or chemistry and material "
                             "(mass fraction)")
        if self.chemistry is not None and self.material is None:
            raise ValueError("a mass fraction needs material as well as chemistry")
        if (self.value is None) == (self.factor is None):
            raise ValueError("give either value or factor")
        return self


Edit = Annotated[ScaleProduction | MoveProduction | Recycling | ScaleTrade | SetFraction,
                 Field(discriminator="kind")]
EDIT_KINDS = ("scale_production", "move_production", "recycling", "scale_trade",
              "set_fraction")


# -- applying -------------------------------------------------------------------------------


def _material(name: str | None, where: str) -> list[str]:
    if name is None:
        return list(MATERIALS)
    if name not in MATERIALS:
        raise EditError(f"{where}: unknown material {name!r}{did_you_mean(name, list(MATERIALS))}")
    return [name]


def _country(inputs: Inputs, name: str, where: str) -> str:
    """The inputs' spelling of a user-typed country (any spelling; a typo gets a suggestion)."""
    key = countries.resolve(name, inputs.preferred_names, where)
    return inputs._labels.get(key, countries.label(key))


def _stage_table(inputs: Inputs, stage: str, material: str) -> dict:
    """The production table of a stage and material, as numbers by country (editable)."""
    table = inputs.production["mine" if stage == "mining" else "refining"].get(material)
    if table is None:
        return {}
    if "gross_tonnes" in table:  # edit the contained amount: convert once
        grade = float(table.pop("grade"))
        table.update({k: v * grade for k, v in table.pop("gross_tonnes").items()})
        table.pop("units", None)
    return table


def _find(table: Mapping, country: str, inputs: Inputs) -> str | None:
    for k in table:
        if k != "Other" and inputs.label(k) == country:
            return k
    return None


def _cathode_columns(inputs: Inputs, chemistry: str | None, where: str) -> list[str]:
    cp = inputs.production["cathode"]
    cols = [k for k, v in cp.items() if isinstance(v, list) and k != "countries"]
    if chemistry is None:
        return cols
    col = "NCM_plus_NCA" if chemistry in cp.get("market_share", {}) else chemistry
    if col not in cols:
        raise EditError(f"{where}: unknown chemistry {chemistry!r}{did_you_mean(chemistry, cols)}")
    return [col]


def _cathode_index(inputs: Inputs, country: str, create: bool) -> int | None:
    cp = inputs.production["cathode"]
    for i, c in enumerate(cp["countries"]):
        if inputs.label(c) == country:
            return i
    if not create:
        return None
    cp["countries"].append(country)
    for k, v in cp.items():
        if isinstance(v, list) and k != "countries":
            v.append(0.0)
    inputs.__dict__.pop("preferred_names", None)
    inputs.__dict__.pop("_labels", None)
    return len(cp["countries"]) - 1


def _scale(inputs: Inputs, e: ScaleProduction, where: str) -> None:
    country = _country(inputs, e.country, where)
    if e.stage == "cathode":
        i = _cathode_index(inputs, country, create=False)
        if i is None:
            raise EditError(f"{where}: {country} makes no cathode")
        for col in _cathode_columns(inputs, e.chemistry, where):
            inputs.production["cathode"][col][i] *= e.factor
        return
    hit = False
    for m in _material(e.material, where):
        table = _stage_table(inputs, e.stage, m)
        k = _find(table, country, inputs)
        if k is not None:
            table[k] = float(table[k]) * e.factor
            hit = True
    if not hit:
        raise EditError(f"{where}: {country} has no {e.stage} output"
                        f"{' of ' + e.material if e.material else ''}")


def _move(inputs: Inputs, e: MoveProduction, where: str) -> None:
    giver = _country(inputs, e.from_, where)
    takers = [_country(inputs, t, f"{where}.to") for t in e.to]
    if e.stage == "cathode":
        i = _cathode_index(inputs, giver, create=False)
        if i is None:
            raise EditError(f"{where}: {giver} makes no cathode")
        idx = [_cathode_index(inputs, t, create=True) for t in takers]
        for col in _cathode_columns(inputs, e.chemistry, where):
            values = inputs.production["cathode"][col]
            moved = values[i] * e.share
            values[i] -= moved
            _spread(values, idx, moved)
        return
    hit = False
    for m in _material(e.material, where):
        table = _stage_table(inputs, e.stage, m)
        k = _find(table, giver, inputs)
        if k is None:
            continue
        hit = True
        moved = float(table[k]) * e.share
        table[k] = float(table[k]) - moved
        keys = []
        for t in takers:
            kt = _find(table, t, inputs)
            if kt is None:
                table[t] = 0.0
                kt = t
            keys.append(kt)
        _spread(table, keys, moved)
    if not hit:
        raise EditError(f"{where}: {giver} has no {e.stage} output to move")


def _spread(values, keys, amount: float) -> None:
    """Add ``amount`` over ``keys`` pro rata to their values (equally if all are zero)."""
    base = [float(values[k]) for k in keys]
    total = sum(base)
    for k, b in zip(keys, base):
        values[k] = b + amount * (b / total if total > 0 else 1 / len(keys))


def _recycle(inputs: Inputs, e: Recycling, where: str) -> None:
    (material,) = _material(e.material, where)
    owner = _country(inputs, e.owner, where)
    into = _country(inputs, e.into, where) if e.into else owner
    table = _stage_table(inputs, "refining", material)
    k = _find(table, into, inputs)
    if k is None:
        raise EditError(f"{where}: {into} does not refine {material}; recovered material "
                        f"needs a refiner (set into: to one of "
                        f"{', '.join(sorted(inputs.label(c) for c in table if c != 'Other'))})")
    table[k] = float(table[k]) + e.tonnes
    inputs.production.setdefault("recycling", []).append(
        {"owner": owner, "into": into, "material": material, "tonnes": e.tonnes})


def _trade(inputs: Inputs, e: ScaleTrade, where: str) -> None:
    exporter = _country(inputs, e.exporter, where)
    importer = _country(inputs, e.importer, where)
    t = inputs.trade_table.copy()
    mask = (t["exporter"] == exporter) & (t["importer"] == importer)
    if e.material is not None:
        (m,) = _material(e.material, where)
        codes = {c for stage in inputs.materials["trade_codes"][m].values() for c in stage}
        mask &= t["hs_code"].isin(codes)
    if not mask.any():
        raise EditError(f"{where}: no trade from {exporter} to {importer}"
                        f"{' in ' + e.material if e.material else ''}")
    # tonnes may be stored as integers: a factor of 0.5 makes them fractional (pandas 3
    # refuses to write floats into an int64 column)
    t["tonnes"] = t["tonnes"].astype("float64")
    t.loc[mask, "tonnes"] = t.loc[mask, "tonnes"] * e.factor
    inputs.__dict__["trade_table"] = t


def _fraction(inputs: Inputs, e: SetFraction, where: str) -> None:
    if e.code is not None:
        specs = [stage[e.code] for m in inputs.materials["trade_codes"].values()
                 for stage in m.values() if e.code in stage]
        if not specs:
            codes = sorted({c for m in inputs.materials["trade_codes"].values()
                            for stage in m.values() for c in stage})
            raise EditError(f"{where}: unknown HS code {e.code!r}{did_you_mean(e.code, codes)}")
        for spec in specs:
            if e.value is None and spec.get("fraction") is None:
                raise EditError(f"{where}: HS code {e.code} has no contained fraction to "
                                "scale; give value: instead of factor")
            new = e.value if e.value is not None else spec["fraction"] * e.factor
            if new > 1:
                raise EditError(f"{where}: this pushes HS code {e.code}'s contained fraction "
                                f"to {new:g}, above 1 t per t")
            spec["fraction"] = new
        return
    fr = inputs.materials["cathode_mass_fractions"]
    if e.chemistry not in fr:
        raise EditError(f"{where}: unknown chemistry {e.chemistry!r}"
                        f"{did_you_mean(e.chemistry, list(fr))}")
    if e.material not in fr[e.chemistry]:
        raise EditError(f"{where}: {e.chemistry} has no {e.material!r} "
                        f"(has {', '.join(fr[e.chemistry])})")
    tables = [fr, *(o.get("cathode_mass_fractions", {}) for o in
                    [inputs.materials.get("paper_overrides", {})])]
    for t in tables:
        if e.material in t.get(e.chemistry, {}):
            old = t[e.chemistry][e.material]
            new = e.value if e.value is not None else old * e.factor
            if new > 1:
                raise EditError(f"{where}: this pushes {e.chemistry}'s {e.material} mass "
                                f"fraction to {new:g}, above 1 t per t")
            t[e.chemistry][e.material] = new


_APPLY = {ScaleProduction: _scale, MoveProduction: _move, Recycling: _recycle,
          ScaleTrade: _trade, SetFraction: _fraction}


def apply_edits(inputs: Inputs, edits: Iterable, where: str = "edits") -> Inputs:
    """A copy of ``inputs`` with the edits applied in order (the original is unchanged)."""
    edits = list(edits)
    if not edits:
        return inputs
    out = Inputs(inputs.year, inputs.folder, copy.deepcopy(inputs.production),
                 copy.deepcopy(inputs.materials), inputs.country_lists)
    if "trade_table" in inputs.__dict__:  # share the loaded table; _trade copies before editing
        out.__dict__["trade_table"] = inputs.trade_table
    for i, e in enumerate(edits):
        _APPLY[type(e)](out, e, f"{where}[{i}]")
    return out


def materials_touched(edits: Iterable) -> set[str] | None:
    """Materials whose network an edit list can change (None: possibly all)."""
    out: set[str] = set()
    for e in edits:
        m = getattr(e, "material", None)
        if isinstance(e, SetFraction) and e.code is not None:
            return None
        if m is None or isinstance(e, (ScaleProduction, MoveProduction)) and e.stage == \
                "cathode":
            return None
        out.add(m)
    return out

"""The statistics under ``data/``: production by stage, materials (HS codes, contained and mass
fractions), countries (importers read, IFASTAT regions) and the compiled trade table.

Every quantity this module returns is in tonnes of contained element.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd

from .. import countries
from ..errors import ChokepointError
from .trademap import read_table

#: ``paper``: what the published flows read, with today's corrected figures; ``published``: the
#: published flows themselves, rebuilt from the statistics (``published_overrides``);
#: ``complete``: every listed HS code and export-side files where import-side ones are missing.
PROFILES = ("paper", "published", "complete")
TRADE_TABLE = "trade_2017_2021.csv.gz"
TRADE_YEARS = range(2017, 2022)


class InputsError(ChokepointError):
    """Missing or malformed inputs under data/."""


def data_dir() -> Path:
    """``$CHOKEPOINT_DATA`` if set, else the ``data/`` the package ships."""
    from ..shipped import data_dir as shipped

    return shipped()


def _load_yaml(path: Path) -> dict:
    from .. import yamlio

    from ..errors import read_text

    if not path.exists():
        raise InputsError(f"{path}: missing input file")
    text = read_text(path, "input file", InputsError, limit=yamlio.MAX_BYTES)
    data, _ = yamlio.load(text, str(path), InputsError)
    if not isinstance(data, dict):
        raise InputsError(f"{path}: expected a YAML mapping")
    return data


@dataclass
class Inputs:
    """Statistics for one year, read from a data folder."""

    year: int
    folder: Path
    production: dict
    materials: dict
    country_lists: dict

    @classmethod
    def load(cls, year: int, folder: str | Path | None = None) -> "Inputs":
        folder = Path(folder) if folder else data_dir()
        prod_path = folder / f"production_{year}.yaml"
        if not prod_path.is_file():
            have = sorted(p.stem.split("_")[1] for p in folder.glob("production_*.yaml"))
            raise InputsError(
                f"no production inputs for {year} (have: {', '.join(have) or 'none'}); to "
                f"supply them, copy {folder / 'production_2020.yaml'} to {prod_path.name} and "
                f"edit its mine, refining and cathode figures")
        if year not in TRADE_YEARS:
            raise InputsError(f"trade data cover {TRADE_YEARS[0]}-{TRADE_YEARS[-1]}, not {year}")
        return cls(year, folder, _load_yaml(prod_path), _load_yaml(folder / "materials.yaml"),
                   _load_yaml(folder / "countries.yaml"))

    # -- names ---------------------------------------------------------------------------

    @cached_property
    def preferred_names(self) -> list[str]:
        """Every country name the inputs use: the spelling each country is labelled by."""
        names = list(self.country_lists.get("importers", []))
        for stage in ("mine", "refining"):
            for table in self.production.get(stage, {}).values():
                if isinstance(table, dict):
                    names += [n for n in table.get("gross_tonnes", table) if n != "Other"]
        names += list(self.production["cathode"]["countries"])
        return list(dict.fromkeys(names))

    @cached_property
    def _labels(self) -> dict[str, str]:
        return {countries.key(n): n for n in self.preferred_names}

    def label(self, name: str) -> str:
        """The inputs' spelling of a country name; non-countries are returned unchanged."""
        return self._labels.get(countries.key(name), name)

    # -- production ----------------------------------------------------------------------

    def _by_country(self, stage: str, material: str) -> dict[str, float]:
        try:
            table = self.production[stage][material]
        except KeyError:
            raise InputsError(f"{self.folder}/production_{self.year}.yaml: no {stage} "
                              f"production for {material}") from None
        if "gross_tonnes" in table:
            grade = float(table["grade"])
            table = {k: v * grade for k, v in table["gross_tonnes"].items()}
        return {self.label(k) if k != "Other" else k: float(v) for k, v in table.items()}

    def overrides(self, profile: str) -> dict:
        """What a profile changes in the figures: ``published_overrides`` for ``published``."""
        return self.materials.get("published_overrides", {}) if profile == "published" else {}

    def mine(self, material: str, profile: str = "paper") -> dict[str, float]:
        out = self._by_country("mine", material)
        over = self.overrides(profile)
        names = over.get("mine_names", {}).get(material, {})
        out = {names.get(k, k): v for k, v in out.items()}
        for country in over.get("omit_mine", {}).get(material, []):
            out.pop(country, None)
        return out

    def refining(self, material: str) -> dict[str, float]:
        return self._by_country("refining", material)

    def recycling(self, material: str) -> list[dict]:
        """Recyclers added by counterfactual edits: owner, into, material, tonnes."""
        return [r for r in self.production.get("recycling", []) if r["material"] == material]

    def refines_by_region(self, material: str) -> bool:
        return bool(self.production["refining"][material].get("by_region", False))

    @cached_property
    def region_of(self) -> dict[str, str]:
        return {self.label(c): r for r, cs in self.country_lists.get("ifa_regions", {}).items()
                for c in cs}

    def refiner_of(self, country: str, material: str) -> str:
        """Who refines what a country acquires: itself, or its IFASTAT region (phosphorus)."""
        if self.refines_by_region(material):
            return self.region_of.get(country, country)
        return country

    @property
    def cathode_makers(self) -> list[str]:
        return [self.label(c) for c in self.production["cathode"]["countries"]]

    def cathode(self, material: str, profile: str) -> dict[tuple[str, str], float]:
        """Contained element in each (country, chemistry)'s cathode output."""
        cp = self.production["cathode"]
        fractions = {k: dict(v) for k, v in self.materials["cathode_mass_fractions"].items()}
        if profile in ("paper", "published"):
            for over in (self.materials.get("paper_overrides", {}), self.overrides(profile)):
                for chem, fr in over.get("cathode_mass_fractions", {}).items():
                    fractions[chem].update(fr)
        share = cp["market_share"]
        out = {}
        for i, country in enumerate(self.cathode_makers):
            for chem, fr in fractions.items():
                if material not in fr:
                    continue
                tonnes = (cp["NCM_plus_NCA"][i] * share[chem] if chem in share else cp[chem][i])
                out[country, chem] = tonnes * fr[material]
        return out

    # -- trade ---------------------------------------------------------------------------

    def codes(self, material: str, stage: str, profile: str) -> dict[str, float]:
        """HS code -> contained fraction, for a material's raw or refined trade."""
        table = self.materials["trade_codes"][material][stage]
        return {code: float(spec["fraction"]) for code, spec in table.items()
                if spec.get("fraction") is not None
                and (profile == "complete" or spec.get("paper", True))}

    def unfed_cathode_pools(self, material: str, profile: str) -> bool:
        """Whether the profile leaves cathode pools without inflow rather than feeding them
        by MRMT (the published phosphorus network)."""
        return material in self.overrides(profile).get("unfed_cathode_pools", [])

    def all_codes(self) -> dict[str, bool]:
        """Every HS code named in the inputs -> whether it may be absent."""
        out: dict[str, bool] = {}
        for stages in self.materials["trade_codes"].values():
            for table in stages.values():
                for code, spec in table.items():
                    out[code] = out.get(code, True) and bool(spec.get("optional", False))
        return out

    def importers(self) -> dict[str, bool]:
        optional = {self.label(n) for n in self.country_lists.get("optional_importers", [])}
        return {self.label(n): n in optional or self.label(n) in optional
                for n in self.country_lists.get("importers", [])}

    @cached_property
    def trade_table(self) -> pd.DataFrame:
        path = self.folder / TRADE_TABLE
        if not path.is_file():
            raise InputsError(f"{path}: no compiled trade table; build it with "
                              "`chokepoint data import-trademap DIR --out data/"
                              f"{TRADE_TABLE}`")
        table = read_table(path)
        for col in ("importer", "exporter"):
            table[col] = table[col].map({n: self.label(n) for n in table[col].unique()})
        return table

    def trade(self, material: str, stage: str, profile: str) -> pd.DataFrame:
        """Bilateral trade of the year in contained tonnes: columns exporter, importer, tonnes."""
        rows = self.trade_rows(material, stage, profile)
        return rows.groupby(["exporter", "importer"], as_index=False, sort=False)["tonnes"].sum()

    def trade_rows(self, material: str, stage: str, profile: str) -> pd.DataFrame:
        """The trade rows the profile reads, in contained tonnes: hs_code, exporter, importer,
        tonnes.

        ``paper``: import-side files of the listed importers only, no mirror files.
        ``complete``: every import-side file (mirror included), and export-side files for the
        importers that have no import-side file for that code.
        """
        codes = self.codes(material, stage, profile)
        t = self.trade_table
        t = t[(t["year"] == self.year) & t["hs_code"].isin(list(codes))]
        imports = t[t["side"] == "import"]
        if profile in ("paper", "published"):
            imports = imports[~imports["mirror"] & imports["importer"].isin(self.importers())]
            for gone in self.overrides(profile).get("absent_import_files", []):
                imports = imports[~((imports["hs_code"] == str(gone["hs_code"]))
                                    & (imports["importer"] == self.label(gone["importer"]))
                                    & (imports["year"] == int(gone["year"])))]
            rows = imports
        else:
            reported = set(zip(imports["hs_code"], imports["importer"]))
            exports = t[t["side"] == "export"]
            gap = [(c, i) not in reported for c, i in zip(exports["hs_code"], exports["importer"])]
            rows = pd.concat([imports, exports[gap]], ignore_index=True)
        rows = rows[rows["exporter"] != rows["importer"]]  # re-imports are no trade
        contained = rows["tonnes"] * rows["hs_code"].map(codes)
        out = pd.DataFrame({"hs_code": rows["hs_code"], "exporter": rows["exporter"],
                            "importer": rows["importer"], "tonnes": contained})
        return out[out["tonnes"] > 0]

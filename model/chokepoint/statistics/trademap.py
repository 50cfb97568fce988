"""Importer of ITC Trade Map downloads into one tidy trade table.

A download folder holds one sub-folder per HS code (``<code> <name>``) and, in each, one
tab-separated file per reporting country: import side ("List of supplying markets for a product
imported by X", optionally ``_(Mirror)`` when partner data stand in for a non-reporter) or export
side ("List of importing markets for a product exported by X"). The importer copes with BOMs,
quoted names, trailing empty columns, unit columns, blank and non-numeric cells, ``World``/``Total``
rows, re-downloads named ``X (1).txt`` and spelling variants of a country; anything it cannot read
or map goes into the warning summary. Quantities stay as reported: tonnes of traded product.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .. import countries
from ..errors import ChokepointError, did_you_mean

COLUMNS = ["year", "hs_code", "importer", "exporter", "tonnes", "side", "mirror"]
IMPORT_PREFIX = "Trade_Map_-_List_of_supplying_markets_for_a_product_imported_by_"
EXPORT_PREFIX = "Trade_Map_-_List_of_importing_markets_for_a_product_exported_by_"
TOTAL_ROWS = {"world", "total"}
_YEAR = re.compile(r"^\s*(\d{4})-(Imported|Exported) quantity", re.IGNORECASE)
_UNIT = re.compile(r"^\s*(\d{4})-Unit", re.IGNORECASE)
_REDOWNLOAD = re.compile(r"^(.*) \((\d+)\)$")


class TradeMapError(ChokepointError):
    """A Trade Map folder that cannot be imported."""


@dataclass
class ImportResult:
    table: pd.DataFrame
    files_read: int = 0
    warnings: list[str] = field(default_factory=list)
    reporters: set[str] = field(default_factory=set)  # countries with a file, any year
    codes: set[str] = field(default_factory=set)  # HS codes with a file, any year
    files: set[tuple[str, str, str]] = field(default_factory=set)  # (code, reporter, side)

    def summary(self) -> str:
        head = (f"read {self.files_read} files: {len(self.table)} rows, years "
                f"{self.table['year'].min()}-{self.table['year'].max()}, "
                f"{self.table['hs_code'].nunique()} HS codes") if len(self.table) else \
            f"read {self.files_read} files: no rows"
        if not self.warnings:
            return head + "; no warnings"
        return "\n".join([head, f"{len(self.warnings)} warning(s):",
                          *(f"  - {w}" for w in self.warnings)])


def reporter_from_filename(stem: str) -> tuple[str, str, bool] | None:
    """(reporter, side, mirror) from a file name stem, or None if it is no Trade Map file."""
    for prefix, side in ((IMPORT_PREFIX, "import"), (EXPORT_PREFIX, "export")):
        if stem.startswith(prefix):
            rest = stem[len(prefix):]
            mirror = rest.endswith("_(Mirror)")
            if mirror:
                rest = rest[: -len("_(Mirror)")]
            return rest.replace("__", ", ").replace("_", " "), side, mirror
    return None


def _number(cell: str) -> float | None:
    text = cell.strip().replace(",", "")
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return None  # "No Quantity" and the like: no reported quantity


#: A file whose partners fall short of its World row by more than this (tonnes, and share of
#: the World row) in some year has rows missing: cut short. In the 2017-2022 downloads
#: partners fall short by rounding (Trade Map rounds each row) and in six files by more.
SHORTFALL_T, SHORTFALL_SHARE = 5.0, 0.05


def read_file(path: Path) -> tuple[list[tuple[str, int, float]], list[str]]:
    """``(partner, year, tonnes)`` rows of one file, and warnings about it."""
    warnings: list[str] = []
    try:
        raw = path.read_bytes()
    except OSError as e:
        return [], [f"{path}: cannot read ({e.strerror}), not read"]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
        warnings.append(f"{path}: not UTF-8, read as Latin-1")
    rows = list(csv.reader(io.StringIO(text), delimiter="\t"))
    if not rows:
        return [], warnings + [f"{path}: empty file, not read"]
    header = rows[0]
    years = {i: int(m.group(1)) for i, h in enumerate(header) if (m := _YEAR.match(h))}
    units = {int(m.group(1)): i for i, h in enumerate(header) if (m := _UNIT.match(h))}
    if not years:
        return [], warnings + [f"{path}: no year columns in header {header[:3]}..., not read"]
    out, short, non_tonnes = [], 0, 0
    world: dict[int, float] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not row or not row[0].strip():
            continue
        partner = row[0].strip().strip('"')
        if partner.lower() in TOTAL_ROWS:
            for i, year in years.items():
                value = _number(row[i]) if i < len(row) else None
                if value is not None:
                    world[year] = value
            continue
        if len(row) < max(years) + 1:
            short += 1
        for i, year in years.items():
            if i >= len(row):
                continue
            value = _number(row[i])
            if value is None:
                continue
            u = units.get(year)
            if u is not None and u < len(row) and row[u].strip() not in ("", "Tons"):
                non_tonnes += 1
                continue
            out.append((partner, year, value))
    if short:
        warnings.append(f"{path}: {short} row(s) shorter than the header (truncated file?); "
                        "their missing cells were skipped")
    totals: dict[int, float] = {}
    for _, year, value in out:
        totals[year] = totals.get(year, 0.0) + value
    for year, total in sorted(world.items()):
        gap = total - totals.get(year, 0.0)
        if gap > max(SHORTFALL_T, SHORTFALL_SHARE * total):
            warnings.append(f"{path}: its partners sum to {totals.get(year, 0.0):,.0f} t in "
                            f"{year}, its World row says {total:,.0f} t: rows are missing "
                            "(cut short? download it again)")
            break
    if non_tonnes:
        warnings.append(f"{path}: {non_tonnes} cell(s) not in tons skipped")
    if len(rows) < 2:
        warnings.append(f"{path}: no data rows")
    return out, warnings


def import_trademap(folder: str | Path, preferred_names: list[str] = (),
                    years: range = range(2017, 2022)) -> ImportResult:
    """Read every Trade Map file under ``folder`` into the tidy table (:data:`COLUMNS`).

    Country names are folded to one spelling per country: the spelling in ``preferred_names``
    (the inputs' own names) when there is one, else the spelling met first.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise TradeMapError(f"{folder}: no such folder of Trade Map downloads")
    preferred = {countries.key(n): n for n in preferred_names}
    res = ImportResult(pd.DataFrame(columns=COLUMNS))
    records: list[tuple] = []
    renamed: Counter = Counter()
    unmapped: Counter = Counter()

    def label(name: str) -> str:
        code = countries.iso3(name)
        if code is None:
            unmapped[name] += 1
            return name
        canonical = preferred.setdefault(code, name)
        if canonical != name:
            renamed[(name, canonical)] += 1
        return canonical

    subfolders = sorted(p for p in folder.iterdir() if p.is_dir())
    if not subfolders:
        raise TradeMapError(f"{folder}: no HS-code sub-folders ('<code> <name>/') in it")
    for sub in subfolders:
        code = sub.name.split()[0]
        if not code.isdigit():
            res.warnings.append(f"{sub}: folder name does not start with an HS code, not read")
            continue
        entries = sorted(sub.iterdir())
        for p in entries:
            if p.is_dir():
                res.warnings.append(f"{p}: a folder where a download file belongs, not read")
            elif not p.is_file():
                res.warnings.append(f"{p}: not a regular file, not read")
        files = [p for p in entries if p.is_file()]
        if not files:
            res.warnings.append(f"{sub}: empty folder")
        names = {p.stem for p in files}
        for path in files:
            parsed = reporter_from_filename(path.stem) if path.suffix == ".txt" else None
            if parsed is None:
                res.warnings.append(f"{path}: not a Trade Map download (name), not read")
                continue
            again = _REDOWNLOAD.match(path.stem)
            if again and again.group(1) in names:
                same = (sub / f"{again.group(1)}.txt").read_bytes() == path.read_bytes()
                res.warnings.append(f"{path}: re-download of {again.group(1)}.txt"
                                    f"{' (identical)' if same else ' (differs; original kept)'}"
                                    ", not read")
                continue
            reporter, side, mirror = parsed
            if again:
                reporter = reporter_from_filename(again.group(1))[0]
                res.warnings.append(f"{path}: re-download with no original; read as {reporter}")
            rows, warns = read_file(path)
            res.warnings.extend(warns)
            res.files_read += 1
            rep = label(reporter)
            res.reporters.add(rep)
            res.codes.add(code)
            res.files.add((code, rep, side))
            for partner, year, tonnes in rows:
                other = label(partner)
                imp, exp = (rep, other) if side == "import" else (other, rep)
                records.append((year, code, imp, exp, tonnes, side, mirror))
    for (name, canonical), n in sorted(renamed.items()):
        res.warnings.append(f"spelling {name!r} read as {canonical!r} ({n} rows)")
    for name, n in sorted(unmapped.items()):
        hint = did_you_mean(name, list(preferred.values()))
        res.warnings.append(f"name {name!r} is no known country{hint}; kept as given ({n} rows)")
    table = pd.DataFrame(records, columns=COLUMNS)
    outside = ~table["year"].isin(list(years))
    if outside.any():
        res.warnings.append(f"{int(outside.sum())} values for years outside "
                            f"{years[0]}-{years[-1]} dropped")
        table = table[~outside]
    table = table.groupby(COLUMNS[:4] + ["side", "mirror"], as_index=False, sort=True)[
        "tonnes"].sum()[COLUMNS]
    res.table = table.astype({"year": "int16", "tonnes": "float64", "mirror": "bool"})
    return res


def check_coverage(result: ImportResult, codes: dict[str, bool], importers: dict[str, bool]):
    """Every HS code and importer the inputs name must have a file unless marked optional.
    An importer with no import-side file for a code whose other countries' export-side files
    report shipments to it is a warning naming those rows: profile ``paper`` reads import-side
    files only, so they would be lost without a word."""
    t = result.table
    exported = t[t["side"] == "export"]
    for name in importers:
        for code in sorted(result.codes):
            if (code, name, "import") in result.files:
                continue
            rows = exported[(exported["importer"] == name) & (exported["hs_code"] == code)]
            if len(rows):
                result.warnings.append(
                    f"HS {code}: no import-side file of {name}, but {len(rows)} export-side "
                    f"row(s) ({rows['tonnes'].sum():,.0f} t, {rows['year'].min()}-"
                    f"{rows['year'].max()}, from {', '.join(sorted(set(rows['exporter']))[:4])}"
                    f"{', ...' if rows['exporter'].nunique() > 4 else ''}) report shipments to "
                    "it; profile paper reads import-side files only")
    have_codes = result.codes
    for code, optional in codes.items():
        if code not in have_codes and not optional:
            raise TradeMapError(
                f"HS code {code} is named in the inputs but no folder '{code} ...' holds data "
                "(mark it optional: true in data/materials.yaml if that is expected)")
    reporters = result.reporters
    for name, optional in importers.items():
        if name not in reporters and not optional:
            raise TradeMapError(
                f"importer {name!r} is named in data/countries.yaml but no file of the download "
                f"reports for it{did_you_mean(name, sorted(reporters))} (list it under "
                "optional_importers if that is expected)")


def read_table(path: str | Path) -> pd.DataFrame:
    """The compiled table as written by :func:`write_table`."""
    import gzip
    import zlib

    try:
        table = pd.read_csv(path, dtype={"hs_code": str, "importer": str, "exporter": str,
                                         "side": str}, keep_default_na=False)
    except FileNotFoundError:
        raise TradeMapError(f"{path}: missing trade table (compile one with chokepoint data "
                            "import-trademap)") from None
    except (EOFError, zlib.error, gzip.BadGzipFile, UnicodeDecodeError) as e:
        raise TradeMapError(f"{path}: the compressed table is cut short or damaged "
                            f"({type(e).__name__}); restore it, or compile it again") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as e:
        raise TradeMapError(f"{path}: not a trade table: {str(e).splitlines()[0]}") from None
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise TradeMapError(f"{path}: not a trade table (no column {missing[0]!r})")
    return table


def write_table(table: pd.DataFrame, path: str | Path) -> None:
    """Write the compiled table whole or not at all (aside, then renamed into place)."""
    from ..publish import header_is, written

    with written(path, ours=header_is(",".join(COLUMNS))) as tmp:
        table.to_csv(tmp, index=False, float_format="%.10g",
                     compression={"method": "gzip", "mtime": 0})

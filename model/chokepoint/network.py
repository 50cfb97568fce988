"""The material-flow network: nodes typed by owner and stage, arcs with tonnage.

One network per material and year. Node names follow the published flows of Cheng et al. (2024):
``<owner>_<suffix>`` for country nodes, the chemistry name for product sinks, and fixed long names
for uncertain sources and other sinks. Tonnages are tonnes of contained element.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import NetworkError, did_you_mean, open_regular, read_bytes

#: Largest flows file read (a network of 10^6 arcs is about 80 MB).
FLOWS_MAX_BYTES = 1 << 30

#: File formats a network can be written in.
FORMATS = ("cheng-csv", "csv")

#: Relative tolerance for the balance of an interior node (inflow vs outflow).
BALANCE_RTOL = 1e-6


class Stage(Enum):
    """Where a node sits in the supply chain, upstream to downstream."""

    MINE = "mine"
    RECYCLING = "recycling"  # recovered material, a primary source like a mine
    REFINING_POOL = "refining_pool"
    REFINING = "refining"
    PRECURSOR = "precursor"
    CATHODE_POOL = "cathode_pool"
    CELL = "cell"
    PACK = "pack"
    VEHICLE = "vehicle"
    PRODUCT = "product"
    OTHER_SINK = "other_sink"
    UNCERTAIN_SOURCE = "uncertain_source"

    @property
    def is_source(self) -> bool:
        return self in (Stage.MINE, Stage.RECYCLING, Stage.UNCERTAIN_SOURCE)

    @property
    def is_primary(self) -> bool:
        """A country's own source of material: a mine or a recycler."""
        return self in (Stage.MINE, Stage.RECYCLING)

    @property
    def is_sink(self) -> bool:
        return self in (Stage.PRODUCT, Stage.OTHER_SINK)

    @property
    def is_interior(self) -> bool:
        return self in (Stage.REFINING_POOL, Stage.REFINING, Stage.PRECURSOR,
                        Stage.CATHODE_POOL, Stage.CELL, Stage.PACK, Stage.VEHICLE)


#: Name suffix of country nodes per stage, in the published flows' spelling. Longest first, so
#: that ``_ref_poss`` is tried before ``_ref``.
SUFFIXES: dict[str, Stage] = {
    "_cath_poss": Stage.CATHODE_POOL,
    "_ref_poss": Stage.REFINING_POOL,
    "_mine": Stage.MINE,
    "_recyc": Stage.RECYCLING,
    "_ref": Stage.REFINING,
    # further stages of longer supply chains (synthetic networks, users' own)
    "_prec": Stage.PRECURSOR,
    "_cell": Stage.CELL,
    "_pack": Stage.PACK,
    "_veh": Stage.VEHICLE,
}

#: The supply-chain steps a focal country can be counted at, and the node stages each covers.
#: The refining pool belongs to refining: it is the raw material a refiner has acquired.
FOCAL_STAGES: dict[str, tuple[Stage, ...]] = {
    "mining": (Stage.MINE,),
    "recycling": (Stage.RECYCLING,),
    "refining": (Stage.REFINING_POOL, Stage.REFINING),
    "precursor": (Stage.PRECURSOR,),
    "cathode": (Stage.CATHODE_POOL,),
    "cell": (Stage.CELL,),
    "pack": (Stage.PACK,),
    "vehicle": (Stage.VEHICLE,),
}

#: Uncertain sources (data gaps: material of unknown origin), full name -> abbreviation.
UNCERTAIN_SOURCES: dict[str, str] = {
    "Missing Refined Material Trade": "MRMT",
    "Unknown Raw Material Source_mine": "URMS",
    "Unaccounted for Additional Refining Production": "UARP",
    "Trade from countries with no refining": "TFCR",
    "Trade from countries with no mining": "TFCM",
}

#: Sinks where material leaves the battery chain, full name -> abbreviation.
OTHER_SINKS: dict[str, str] = {
    "Non-Battery Cathode Products": "NBCP",
    "Raw Materials not accounted for in refining production": "NTRM",
    "Trade to countries with no refining or <br /> raw materials not accounted for in trade": "TTCR",
    "Trade to countries with no cathode production or <br /> refined materials not accounted for in trade": "NCPC",
}

#: Cathode chemistries, the product sinks whose supply the index measures.
PRODUCTS: tuple[str, ...] = ("NCM", "NCA", "LFP", "LMO", "LCO")

_SPECIAL_BY_ABBREVIATION = {
    abbr: name for name, abbr in {**UNCERTAIN_SOURCES, **OTHER_SINKS}.items()
}


def parse_node(name: str) -> tuple[str, Stage]:
    """Owner and stage of a node name; raises ``ValueError`` for a name of no known stage."""
    name = _SPECIAL_BY_ABBREVIATION.get(name, name)
    if name in UNCERTAIN_SOURCES:
        return UNCERTAIN_SOURCES[name], Stage.UNCERTAIN_SOURCE
    if name in OTHER_SINKS:
        return OTHER_SINKS[name], Stage.OTHER_SINK
    if name in PRODUCTS:
        return name, Stage.PRODUCT
    for suffix, stage in SUFFIXES.items():
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], stage
    known = list(SUFFIXES) + list(PRODUCTS) + list(_SPECIAL_BY_ABBREVIATION)
    tail = "_" + name.rsplit("_", 1)[-1] if "_" in name else name
    raise ValueError(
        f"node {name!r} has an unknown stage suffix{did_you_mean(tail, known)}; expected "
        f"<country>{'|'.join(SUFFIXES)}, a product ({', '.join(PRODUCTS)}) or a special node"
    )


def node_name(owner: str, stage: Stage) -> str:
    """The published-flows name of the node ``owner`` has at ``stage``."""
    if stage in (Stage.UNCERTAIN_SOURCE, Stage.OTHER_SINK):
        return _SPECIAL_BY_ABBREVIATION.get(owner, owner)
    if stage is Stage.PRODUCT:
        return owner
    suffix = next(s for s, st in SUFFIXES.items() if st is stage)
    return owner + suffix


@dataclass(frozen=True)
class Network:
    """A balanced material-flow network.

    ``arcs`` has columns ``source``, ``target`` (node names) and ``tonnes`` (contained element);
    ``nodes`` is indexed by node name with columns ``owner`` and ``stage``.
    """

    arcs: pd.DataFrame
    nodes: pd.DataFrame
    material: str = ""
    year: int | None = None
    origin: str = "<memory>"
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_arcs(
        cls,
        arcs: pd.DataFrame | list[tuple[str, str, float]],
        material: str = "",
        year: int | None = None,
        origin: str = "<memory>",
        close_imbalances: bool = False,
        check_balance: bool = True,
    ) -> "Network":
        """Build and validate a network from ``(source, target, tonnes)`` rows.

        ``close_imbalances`` balances every interior node by the material-flow step's own rules
        before validation (a shortfall is fed by the stage's uncertain source, a surplus leaves
        to the stage's other sink), for networks published unbalanced.
        """
        if not isinstance(arcs, pd.DataFrame):
            arcs = pd.DataFrame(list(arcs), columns=["source", "target", "tonnes"])
        if not arcs.index.equals(pd.RangeIndex(len(arcs))):
            arcs = arcs.reset_index(drop=True)
        rows = _Rows(origin)
        _check_tonnage(arcs, rows)
        src, tgt, names = _factorised(arcs["source"], arcs["target"], rows)
        parsed, bad = {}, {}
        for n in names:  # each distinct name once; the first bad one by row is reported
            try:
                parsed[n] = parse_node(n)
            except ValueError as e:
                bad[n] = e
        if bad:
            wrong = names.isin(list(bad))
            i = int(np.flatnonzero(wrong[src] | wrong[tgt])[0])
            n = names[src[i]] if wrong[src[i]] else names[tgt[i]]
            raise NetworkError(f"{rows[i]}: {bad[n]}")
        nodes = pd.DataFrame(
            {"owner": [parsed[n][0] for n in names],
             "stage": np.array([parsed[n][1] for n in names], dtype=object)},
            index=pd.Index(names, name="name"),
        )
        if close_imbalances:
            arcs = _closed(arcs, {n: parsed[n][1] for n in names})
            return cls.from_arcs(arcs, material, year, origin)
        # Node names are stored once: the arc columns are categorical over the node index,
        # their codes the arcs' node positions (2 bytes a name instead of a string object).
        table = {"source": pd.Categorical.from_codes(src, dtype=pd.CategoricalDtype(names)),
                 "target": pd.Categorical.from_codes(tgt, dtype=pd.CategoricalDtype(names)),
                 "tonnes": pd.to_numeric(arcs["tonnes"]).to_numpy(dtype=float)}
        if "provenance" in arcs:
            table["provenance"] = arcs["provenance"].to_numpy()
        net = cls(arcs=pd.DataFrame(table, copy=False), nodes=nodes,
                  material=material, year=year, origin=origin)
        net._cache["positions"] = (src, tgt)  # the codes, already as positions
        net._validate(rows, check_balance)
        return net

    @classmethod
    def read_csv(cls, path: str | Path, material: str = "", year: int | None = None,
                 close_imbalances: bool = False) -> "Network":
        """Read the published flows format: ``Source,Target,Value`` (UTF-8, BOM optional)."""
        from .digests import digest_soon

        path = Path(path)
        # streamed from the file (no copy of it in memory), and hashed for the results'
        # provenance on another core meanwhile
        arcs = None
        with open_regular(path, "flows file", NetworkError) as f:
            digest_soon(path)
            fd = f.fileno()
            size = os.fstat(fd).st_size
            if size <= FLOWS_MAX_BYTES:
                arcs = _read_typed_halves(fd, size) if _cores() > 1 else None
                if arcs is None:
                    arcs = _read_typed(_Span(fd, 0, size))
        # a file past the bound, or a fault in it: the whole-file reader says which, the text
        # reader names the fault's row or column
        if arcs is None:
            data = read_bytes(path, "flows file", NetworkError, limit=FLOWS_MAX_BYTES)
            arcs = _read_text(path, data)
        if arcs.empty:
            raise NetworkError(f"{path}: has a header and no rows: a network needs at least "
                               "one Source,Target,Value row")
        return cls.from_arcs(arcs, material=material, year=year, origin=str(path),
                             close_imbalances=close_imbalances)

    def to_csv(self, path: str | Path, fmt: str = "cheng-csv") -> None:
        """Write the published flows format (``cheng-csv``: ``Source,Target,Value``) or the
        project's own (``csv``: ``source,target,tonnes,provenance``)."""
        if fmt == "cheng-csv":
            out = self.arcs[["source", "target", "tonnes"]].set_axis(
                ["Source", "Target", "Value"], axis=1)
        elif fmt == "csv":
            out = self.arcs if "provenance" in self.arcs else self.arcs.assign(provenance="")
        else:
            raise NetworkError(f"unknown network format {fmt!r}{did_you_mean(fmt, FORMATS)}; "
                               f"choose from {', '.join(FORMATS)}")
        out.to_csv(path, index=False, quoting=csv.QUOTE_MINIMAL, float_format="%.10g")

    # -- derived views ---------------------------------------------------------------------

    @property
    def products(self) -> list[str]:
        """Product sinks present in this network, in canonical order."""
        present = set(self.nodes.index[self.nodes["stage"] == Stage.PRODUCT])
        return [p for p in PRODUCTS if p in present]

    @property
    def owners(self) -> list[str]:
        """Owners of country nodes (countries, regions, ``Other``), sorted."""
        countryish = ~self.nodes["stage"].isin(
            [Stage.PRODUCT, Stage.OTHER_SINK, Stage.UNCERTAIN_SOURCE]
        )
        return sorted(set(self.nodes.loc[countryish, "owner"]))

    def positions(self) -> tuple[np.ndarray, np.ndarray]:
        """Node positions (in ``nodes``) of each arc's source and target."""
        if "positions" not in self._cache:
            self._cache["positions"] = tuple(_positions(self.arcs[c], self.nodes.index)
                                             for c in ("source", "target"))
        return self._cache["positions"]

    def node_flow(self) -> pd.DataFrame:
        """Observed inflow and outflow per node (tonnes)."""
        if "node_flow" not in self._cache:
            src, tgt = self.positions()
            tonnes = self.arcs["tonnes"].to_numpy(dtype=float)
            n = len(self.nodes)
            self._cache["node_flow"] = pd.DataFrame(
                {"inflow": np.bincount(tgt, tonnes, n), "outflow": np.bincount(src, tonnes, n)},
                index=self.nodes.index)
        return self._cache["node_flow"]

    def product_supply(self, product: str) -> float:
        """Total observed tonnes into a product sink."""
        return float(self.arcs.loc[self.arcs["target"] == product, "tonnes"].sum())

    def require_product(self, product: str) -> None:
        if product not in self.products:
            raise NetworkError(
                f"{self.origin}: no product sink {product!r} in this {self.material or ''} network "
                f"(it has {', '.join(self.products) or 'none'})"
            )

    # -- validation ------------------------------------------------------------------------

    def _validate(self, rows: "_Rows", check_balance: bool = True) -> None:
        arcs, stage = self.arcs, self.nodes["stage"].to_numpy()
        src, tgt = self.positions()
        pair = src.astype(np.int64, copy=False) * len(stage) + tgt
        pair.sort()  # a sort finds a repeat 8x faster than hashing 5 million pairs
        if (pair[1:] == pair[:-1]).any():
            pair = src.astype(np.int64, copy=False) * len(stage) + tgt  # in the arcs' order
            i = int(np.flatnonzero(pd.Series(pair).duplicated(keep="first").to_numpy())[0])
            raise NetworkError(
                f"{rows[i]}: duplicate arc {arcs.source[i]!r} -> {arcs.target[i]!r}"
            )
        kind = {st: np.array([x is st for x in stage], dtype=bool) for st in Stage}
        sink = kind[Stage.PRODUCT] | kind[Stage.OTHER_SINK]
        source = kind[Stage.MINE] | kind[Stage.RECYCLING] | kind[Stage.UNCERTAIN_SOURCE]
        interior = np.array([x.is_interior for x in stage], dtype=bool)
        checks = [
            (src == tgt, lambda i: f"arc from {arcs.source[i]!r} to itself"),
            (sink[src], lambda i: f"{arcs.source[i]!r} is a {stage[src[i]].value} and cannot "
                                  "send flow"),
            (kind[Stage.UNCERTAIN_SOURCE][src] & ~interior[tgt],
             lambda i: f"uncertain source {arcs.source[i]!r} feeds {arcs.target[i]!r}, which "
                       "is no interior node (pool or processor)"),
            (source[tgt], lambda i: f"{arcs.target[i]!r} is a {stage[tgt[i]].value} and cannot "
                                    "receive flow"),
        ]
        bad = [(int(np.flatnonzero(mask)[0]), say) for mask, say in checks if mask.any()]
        if bad:
            i, say = min(bad, key=lambda b: b[0])
            raise NetworkError(f"{rows[i]}: {say(i)}")
        if not self.products:
            raise NetworkError(
                f"{self.origin}: no product sink: no arc ends in any of {', '.join(PRODUCTS)}"
            )
        if not check_balance:
            return
        flow = self.node_flow()
        inflow, outflow = flow["inflow"].to_numpy(), flow["outflow"].to_numpy()
        gap = np.abs(inflow - outflow)
        scale = np.maximum(inflow, outflow)
        unbalanced = interior & (gap > BALANCE_RTOL * np.where(scale > 0, scale, 1.0))
        if unbalanced.any():
            n = self.nodes.index[int(np.flatnonzero(unbalanced)[0])]
            raise NetworkError(
                f"{self.origin}: node {n!r} is unbalanced: inflow {flow.inflow[n]:.6g} t, "
                f"outflow {flow.outflow[n]:.6g} t (relative tolerance {BALANCE_RTOL:g})"
            )


class _Rows:
    """``origin: row N`` for the i-th arc (N counts the header, from 1), made on demand."""

    def __init__(self, origin: str):
        self.origin = origin

    def __getitem__(self, i: int) -> str:
        return f"{self.origin}: row {i + 2}"


#: The published flows' columns.
FLOWS_COLUMNS = ["Source", "Target", "Value"]


#: Flows files of this many bytes or more are parsed in two halves side by side, on two threads
#: (pandas' tokenizer releases the GIL): 264 MB in 0.6-0.7 s instead of 1.1-1.2 s.
SPLIT_READ_BYTES = 32 << 20


class _Span:
    """Bytes ``[start, end)`` of an open file as a file pandas streams from (no copy of the file
    in memory; signal handlers run between its reads), read with ``pread`` (two spans of one
    file are read side by side), counting the quote characters read."""

    def __init__(self, fd: int, start: int, end: int):
        self.fd, self.pos, self.end, self.quotes = fd, start, end, 0

    def read(self, n: int = -1) -> bytes:
        left = self.end - self.pos
        data = os.pread(self.fd, left if n is None or n < 0 else min(n, left), self.pos)
        self.pos += len(data)
        self.quotes += data.count(b'"')
        return data


def _cores() -> int:
    """The cores this process may run on (a file is split only with two or more)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _read_typed_halves(fd: int, size: int) -> pd.DataFrame | None:
    """:func:`_read_typed` of a large flows file (``size`` bytes) as two halves parsed side by
    side, split at the first line break after the middle; ``None`` for a small file or any
    doubt (then the file is read whole: a fault in it is named as ever). A break inside a
    quoted name is no row boundary: the first half then holds an odd number of quote
    characters, and the halves are not used."""
    import threading

    from pandas.api.types import union_categoricals

    if size < SPLIT_READ_BYTES:
        return None
    head, middle = os.pread(fd, 1 << 16, 0), os.pread(fd, 1 << 16, size // 2)
    if b"\n" not in head or b"\n" not in middle:
        return None
    mid = size // 2 + middle.index(b"\n") + 1
    if mid >= size:
        return None
    try:
        names = next(csv.reader([head[:head.index(b"\n")].decode("utf-8-sig")]))
    except (UnicodeDecodeError, csv.Error, StopIteration):
        return None
    first, second = _Span(fd, 0, mid), _Span(fd, mid, size)
    got: list = []
    other = threading.Thread(target=lambda: got.append(_read_typed(second, names)),
                             name="chokepoint-read", daemon=True)
    other.start()
    a = _read_typed(first)
    other.join()
    b = got[0] if got else None
    if a is None or b is None or first.quotes % 2:
        return None
    _trim()
    return pd.DataFrame({
        "source": union_categoricals([a["source"], b["source"]]),
        "target": union_categoricals([a["target"], b["target"]]),
        "tonnes": np.concatenate([a["tonnes"].to_numpy(), b["tonnes"].to_numpy()])})


def _trim() -> None:
    """Give the C heap's free memory back to the system (glibc; elsewhere nothing): the
    half parsed on the second thread leaves its buffers in that thread's own heap, which
    glibc keeps (60 MB of resident memory at 264 MB, held through the whole run)."""
    import ctypes

    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _read_typed(source, names: list[str] | None = None) -> pd.DataFrame | None:
    """The arcs of a flows file in one typed pass: names as categories (each distinct name
    parsed once), tonnages as floats (``names``: the columns of a part without the header).
    ``None`` when the file is not a clean table of non-negative numbers (or cannot be read):
    :func:`_read_text` then finds and names the fault, with the same messages as ever."""
    try:
        table = pd.read_csv(source, encoding="utf-8-sig", keep_default_na=False,
                            na_filter=False,
                            low_memory=False,
                            header=None if names else "infer", names=names,
                            dtype={"Source": "category", "Target": "category",
                                   "Value": "float64"})
    except (OSError, ValueError, UnicodeError, pd.errors.ParserError,
            pd.errors.EmptyDataError):
        return None
    if list(table.columns[:3]) != FLOWS_COLUMNS or table["Value"].dtype != np.float64:
        return None
    values = table["Value"].to_numpy()
    if not (np.isfinite(values).all() and (values >= 0).all()):
        return None
    return table[FLOWS_COLUMNS].set_axis(["source", "target", "tonnes"], axis=1)


def _read_text(path: Path, data: bytes) -> pd.DataFrame:
    """The arcs of a flows file read as text, every cell a string: slow, but it names what is
    wrong in a file the typed reader refused."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise NetworkError(f"{path}: cannot read: not UTF-8 text ({e.reason} at byte "
                           f"{e.start})") from None
    try:
        table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise NetworkError(f"{path}: not a CSV table: {str(e).splitlines()[0]}") from None
    if list(table.columns[:3]) != FLOWS_COLUMNS:
        raise NetworkError(
            f"{path}: columns are {list(table.columns)}, expected {FLOWS_COLUMNS}"
        )
    return table[FLOWS_COLUMNS].set_axis(["source", "target", "tonnes"], axis=1)


def _codes(names: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Codes of a column of names, numbered by first appearance (-1: missing), and the names
    so numbered."""
    if isinstance(names.dtype, pd.CategoricalDtype) and (names.cat.codes >= 0).all():
        # a categorical's codes follow its (sorted) categories: renumber them by appearance
        # (the few distinct codes in order of appearance, then one lookup per arc)
        codes = names.cat.codes.to_numpy()
        order = pd.unique(codes)
        renumber = np.empty(len(names.cat.categories), dtype=np.intp)
        renumber[order] = np.arange(len(order))
        # (indexing by the 2-byte codes directly is 5x slower: NumPy casts them one by one)
        return (renumber[codes.astype(np.intp)],
                names.cat.categories.to_numpy(dtype=object)[order])
    return pd.factorize(names.to_numpy(dtype=object))


def _factorised(source: pd.Series, target: pd.Series,
                rows: "_Rows") -> tuple[np.ndarray, np.ndarray, pd.Index]:
    """Arcs' source and target positions and the node names, in order of first appearance
    (sources first, then targets): each distinct name is hashed once per column."""
    src, src_names = _codes(source)
    tgt, tgt_names = _codes(target)
    for codes in (src, tgt):
        if (codes < 0).any():
            raise NetworkError(f"{rows[int(np.flatnonzero(codes < 0)[0])]}: a node name is "
                               "missing")
    first = pd.Index(src_names)
    names = first.append(pd.Index(tgt_names[~pd.Index(tgt_names).isin(first)]))
    return (src.astype(np.intp, copy=False),
            names.get_indexer(tgt_names).astype(np.intp, copy=False)[tgt], names)


def _positions(column: pd.Series, index: pd.Index) -> np.ndarray:
    """Positions in ``index`` of a column of node names (its codes, when the column is a
    categorical over that very index)."""
    if isinstance(column.dtype, pd.CategoricalDtype) and column.cat.categories.equals(index):
        return column.cat.codes.to_numpy().astype(np.intp)
    return index.get_indexer(column)


def _check_tonnage(arcs: pd.DataFrame, rows: list[str]) -> None:
    if arcs["tonnes"].dtype == np.float64:  # the typed reader's column: two passes suffice
        v = arcs["tonnes"].to_numpy()
        if np.isfinite(v).all() and (v >= 0).all():
            return
    values = pd.to_numeric(arcs["tonnes"], errors="coerce")
    for i in np.flatnonzero(values.isna() | ~np.isfinite(values.fillna(0))):
        raise NetworkError(f"{rows[i]}: tonnage {arcs['tonnes'][i]!r} is not a number")
    for i in np.flatnonzero(values < 0):
        raise NetworkError(
            f"{rows[i]}: negative tonnage {values[i]:g} on {arcs.source[i]!r} -> {arcs.target[i]!r}"
        )


#: How the material-flow step closes a node of each stage: (source of a shortfall, sink of a
#: surplus), as abbreviations.
CLOSING = {
    Stage.REFINING_POOL: ("URMS", "NTRM"),
    Stage.REFINING: ("UARP", "NCPC"),
    Stage.CATHODE_POOL: ("MRMT", "NBCP"),
}


def _closed(arcs: pd.DataFrame, stages: dict[str, Stage]) -> pd.DataFrame:
    values = pd.to_numeric(arcs["tonnes"], errors="coerce")
    inflow = values.groupby(arcs["target"]).sum()
    outflow = values.groupby(arcs["source"]).sum()
    extra = []
    for node, stage in stages.items():
        if stage not in CLOSING:
            continue
        gap = float(inflow.get(node, 0.0)) - float(outflow.get(node, 0.0))
        scale = max(float(inflow.get(node, 0.0)), float(outflow.get(node, 0.0)), 1.0)
        if abs(gap) <= BALANCE_RTOL * scale:
            continue
        source, sink = CLOSING[stage]
        if gap < 0:
            extra.append((node_name(source, Stage.UNCERTAIN_SOURCE), node, -gap))
        else:
            extra.append((node, node_name(sink, Stage.OTHER_SINK), gap))
    added = pd.DataFrame(extra, columns=["source", "target", "tonnes"])
    if "provenance" in arcs:
        added["provenance"] = "closed_imbalance"
    merged = pd.concat([arcs, added], ignore_index=True)
    merged["tonnes"] = pd.to_numeric(merged["tonnes"], errors="coerce")
    agg = {"tonnes": "sum"} | ({"provenance": "first"} if "provenance" in merged else {})
    return merged.groupby(["source", "target"], as_index=False, sort=False).agg(agg)

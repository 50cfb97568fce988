"""Saved parts of a run: finished tasks kept so that an interrupted run resumes.

A part is JSON (no pickle: a part read back can only ever be data), written aside and renamed
into place, and carries the fingerprint of everything its task read: the task (its variant's
scenario, samples, blocs, extensions' SHA-256), the content of the flows files or of the
``data/`` tables, and the package version. A part whose fingerprint or key does not match, or
that is cut short, is named, discarded and computed again; when the inputs changed since an
earlier run stopped unfinished (interrupted, or failed), its parts are discarded with a note.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from ..digests import file_digest
from ..publish import target_of, write_file

FORMAT = "chokepoint-part/1"
log = logging.getLogger("chokepoint")


def input_files(spec, base: Path | None) -> list[Path]:
    """The data files a scenario's networks are read from: its flows files, or the tables
    under ``data/`` the material-flow step reads."""
    from ..chemistry import MATERIALS, parse_pair
    from ..statistics.inputs import TRADE_TABLE, data_dir

    if spec.network.flows is not None:
        folder = (Path(base or Path.cwd()) / spec.network.flows).resolve()
        materials = {parse_pair(p).material for p in spec.pairs}
        return [folder / f"{m}_{spec.network.year}.csv" for m in MATERIALS if m in materials]
    folder = data_dir()
    return [folder / f"production_{spec.network.year}.yaml", folder / "materials.yaml",
            folder / "countries.yaml", folder / TRADE_TABLE]


def fingerprint(tasks: Sequence, files: Iterable[Path]) -> str:
    """One digest of the tasks and the content of every file they read."""
    from .. import __version__

    h = hashlib.sha256(f"chokepoint {__version__}\n".encode())
    for t in tasks:
        record = asdict(t)
        h.update(json.dumps(record, sort_keys=True, default=str).encode())
    for f in sorted({str(p) for p in files}):
        h.update(f"{Path(f).name} {file_digest(f) if Path(f).is_file() else 'absent'}\n"
                 .encode())
    return h.hexdigest()


def _frame(table: dict) -> pd.DataFrame:
    df = pd.DataFrame(table["data"], columns=table["columns"])
    for col, dtype in table["dtypes"].items():
        df[col] = df[col].astype(dtype)
    return df


def _table(df: pd.DataFrame) -> dict:
    return {"columns": list(df.columns), "dtypes": {c: str(t) for c, t in df.dtypes.items()},
            "data": df.astype(object).where(df.notna(), None).values.tolist()}


class PartStore:
    """Finished tasks of one output folder, under ``.<out>.parts/`` beside it."""

    def __init__(self, out_dir: str | Path, stamp: str):
        target = target_of(out_dir)
        self.dir = target.parent / f".{target.name}.parts"
        self.stamp = stamp
        mark = self.dir / "fingerprint"
        if mark.is_file() and mark.read_text(encoding="utf-8").strip() != stamp:
            # the earlier run may have been interrupted or may have failed: it did not finish
            n = len(list(self.dir.glob("*.json")))
            if n:
                log.warning("the inputs changed since an earlier run stopped unfinished: its "
                            "%d saved part%s discarded", n, " is" if n == 1 else "s are")
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        if not mark.is_file():
            write_file(mark, stamp)

    def path(self, key: str) -> Path:
        return self.dir / f"{key}.json"

    def save(self, key: str, result: tuple[pd.DataFrame, pd.DataFrame]) -> None:
        vul, stages = result
        write_file(self.path(key), json.dumps({
            "format": FORMAT, "fingerprint": self.stamp, "key": key,
            "vulnerability": _table(vul), "stages": _table(stages)}))

    def load(self, key: str) -> tuple[pd.DataFrame, pd.DataFrame] | None:
        """The saved result, or None when there is none or it is not whole and ours (such a
        part is named and discarded)."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            if d.get("format") != FORMAT or d.get("fingerprint") != self.stamp or \
                    d.get("key") != key:
                raise ValueError("not a part of this run")
            return _frame(d["vulnerability"]), _frame(d["stages"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            why = "cut short" if isinstance(e, json.JSONDecodeError) else str(e)
            log.warning("saved part %s is %s: discarded, computing it again", path.name, why)
            path.unlink(missing_ok=True)
            return None

    def count(self) -> int:
        return len(list(self.dir.glob("*.json")))

    def clear(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

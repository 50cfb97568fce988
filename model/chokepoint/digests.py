"""SHA-256 of the input files, for the results' provenance and the saved parts' fingerprints:
computed once per file content, and for a flows file on another core while it is parsed.

A 264 MB flows file takes 0.25 s to hash. :func:`digest_soon` starts that in a thread as the
file is opened for parsing (``hashlib`` releases the GIL while it hashes, the parse runs in the
main thread), so :func:`file_digest` later finds it done instead of reading the file again.
"""

from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import Future
from pathlib import Path

#: Digests kept (by path, size and modification time): more than any run's input files.
KEEP = 256
_BLOCK = 1 << 20

_digests: dict[tuple[str, int, int], Future] = {}
_lock = threading.Lock()


def _key(path: str | Path) -> tuple[str, int, int]:
    st = os.stat(path)
    return str(Path(path).absolute()), st.st_size, st.st_mtime_ns


def _hash(path: str, future: Future) -> None:
    try:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(_BLOCK), b""):
                h.update(block)
        future.set_result(h.hexdigest())
    except BaseException as e:  # told to whoever asks for the digest
        future.set_exception(e)


def _claim(path: str | Path) -> tuple[Future, bool]:
    """The digest of ``path``'s current content, and whether the caller is to compute it."""
    key = _key(path)
    with _lock:
        got = _digests.get(key)
        if got is not None:
            return got, False
        if len(_digests) >= KEEP:
            _digests.pop(next(iter(_digests)))
        _digests[key] = got = Future()
        return got, True


def digest_soon(path: str | Path) -> None:
    """Start hashing ``path`` in a background thread (nothing if it is hashed or under way)."""
    future, mine = _claim(path)
    if mine:
        threading.Thread(target=_hash, args=(str(path), future), daemon=True,
                         name="chokepoint-digest").start()


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's content (hex), kept while its size and time stay the same."""
    future, mine = _claim(path)
    if mine:
        _hash(str(path), future)
    try:
        return future.result()
    except BaseException:
        with _lock:  # a failure is not kept: the next caller tries again
            for key in [k for k, v in _digests.items() if v is future]:
                del _digests[key]
        raise

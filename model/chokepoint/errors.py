"""User-facing errors.

Every problem a user can cause (a bad file, a misspelt name, a solver that is missing) is raised as
a :class:`ChokepointError` whose message is one line naming the file, key, row or name at fault.
The CLI prints that line and exits non-zero; only ``--debug`` shows a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


#: The signal that asked this process to stop (set by the command line's handlers): an error
#: raised while a signal unwinds the work (a reader cut off mid-read) is the interrupt, not a
#: failure of its own.
STOP_SIGNAL: list[int] = []


class ChokepointError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class NetworkError(ChokepointError):
    """A flow network that cannot be read or is not a valid supply-chain network."""


class ScenarioError(ChokepointError):
    """A scenario file that cannot be read or does not follow the schema."""


class SolverError(ChokepointError):
    """A solver that is missing or that did not return an optimal solution."""


#: Largest file the user names that is read whole (scenarios, blocs, extensions, flows...).
MAX_FILE_BYTES = 10_000_000
#: Bytes read at a time: between two reads the signal handlers run, so Ctrl-C and SIGTERM
#: stop even a read of a slow file at once.
_CHUNK = 1 << 20


def file_kind(mode: int) -> str | None:
    """What a file of this ``st_mode`` is when it is not a regular file (or a folder)."""
    import stat

    if stat.S_ISREG(mode):
        return None
    return {stat.S_IFDIR: "a folder", stat.S_IFCHR: "a character device",
            stat.S_IFBLK: "a block device", stat.S_IFIFO: "a FIFO (named pipe)",
            stat.S_IFSOCK: "a socket"}.get(stat.S_IFMT(mode), "not a regular file")


def open_regular(path, what: str, error: type[ChokepointError]):
    """A regular file opened for reading (binary), or ``error`` naming the file: a device, FIFO
    or socket is refused before a byte is read (a FIFO without a writer would block,
    ``/dev/zero`` never ends)."""
    import os

    try:
        # O_NONBLOCK: opening a FIFO without a writer returns at once instead of waiting
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except OSError as e:
        raise error(f"{path}: cannot read: {e.strerror or e}") from None
    kind = file_kind(os.fstat(fd).st_mode)
    if kind:
        os.close(fd)
        raise error(f"{path}: is {kind}, not a regular file; give the {what} itself")
    return open(fd, "rb", closefd=True)


def read_bytes(path, what: str, error: type[ChokepointError],
               limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (:func:`open_regular`), or
    ``error`` naming the file; it is read in chunks with a bound."""
    with open_regular(path, what, error) as f:
        chunks, size = [], 0
        try:
            while size <= limit:
                chunk = f.read(min(_CHUNK, limit + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        except OSError as e:
            raise error(f"{path}: cannot read: {e.strerror or e}") from None
    if size > limit:
        raise error(f"{path}: more than the {limit:,} bytes a {what} may have")
    return b"".join(chunks)


def read_text(path, what: str, error: type[ChokepointError],
              limit: int = MAX_FILE_BYTES) -> str:
    """A UTF-8 text file (BOM optional) read with :func:`read_bytes`'s checks and bound, or
    ``error`` naming the file and what it should be."""
    data = read_bytes(path, what, error, limit)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise error(f"{path}: cannot read: not UTF-8 text ({e.reason} at byte {e.start})") \
            from None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A ``" (did you mean 'X'?)"`` suffix naming the closest choice, or ``""`` if none is close."""
    choices = list(dict.fromkeys(choices))
    by_lower = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return f" (did you mean '{by_lower[close[0]]}'?)" if close else ""

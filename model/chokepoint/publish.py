"""Results published whole: one writer per output folder, the folder built aside and swapped in.

- :func:`output_lock`: a lock (``filelock``) beside the output folder, held for the whole run,
  so a second run on the same ``--out`` stops at once, naming the first (pid, host, start,
  command), instead of mixing two runs' parts or files.
- :func:`staged`: a fresh folder on the target's own file system (symlinks are followed, so a
  link to another file system works; a mount point is staged inside itself). On success it
  replaces the target in one step (``renameat2(RENAME_EXCHANGE)``, where the kernel and file
  system have it; else two renames a moment apart): no file of an earlier run survives beside
  the new ones, and after any failure the earlier folder is as it was.
- :func:`write_file`: one file written aside and renamed into place.

A folder is replaced only if it is empty or holds a :data:`MARKER` (what made it), so a
mistyped ``--out`` never swaps away a folder of the user's own.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import ChokepointError

#: Written into every output folder: the package version, the command and the time.
MARKER = "chokepoint-run.json"
RENAME_EXCHANGE = 2
_AT_FDCWD = -100


class OutputBusy(ChokepointError):
    """Another run holds the output folder."""


def os_error(e: OSError, path: str | Path | None = None) -> ChokepointError:
    """An OS error the user can act on, as one line naming the path."""
    name = e.filename or path
    why = {errno.ENOSPC: "no space left on the device", errno.EROFS: "read-only file system",
           errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
           errno.ENAMETOOLONG: "file name too long",
           errno.ENOTDIR: "a part of the path is a file, not a folder",
           errno.EISDIR: "is a folder", errno.ENOENT: "no such file or folder",
           errno.EDQUOT: "disk quota exceeded"}.get(e.errno, e.strerror or str(e))
    return ChokepointError(f"{name}: {why}" if name else why)


def target_of(out: str | Path) -> Path:
    """The folder ``out`` names, symlinks followed (it may not exist yet)."""
    return Path(os.path.realpath(Path(out).expanduser()))


def check_path(out: str | Path, folder: bool = True) -> Path:
    """Fail now, before any work, when a file stands where ``out`` or a folder above it
    should be; the path with symlinks followed."""
    target = target_of(out)
    for p in [target, *target.parents]:
        if p.exists():
            if p == target and not folder:
                if p.is_dir():
                    raise ChokepointError(f"{out}: is a folder; give a file name")
            elif not p.is_dir():
                what = "is a file" if p == target else f"is a file, so {out} cannot be made"
                raise ChokepointError(f"{out}: {p} {what}; choose another --out")
            break
    return target


def check_output(out: str | Path) -> Path:
    """Fail now, before any work, when ``out`` cannot be an output folder."""
    target = check_path(out)
    if target.is_dir() and any(target.iterdir()) and not (target / MARKER).is_file() \
            and not (target / "results.nc").is_file():
        raise ChokepointError(f"{out}: the folder exists and is not a chokepoint output "
                              f"(no {MARKER}); choose another --out or empty it")
    return target


@contextmanager
def output_lock(out: str | Path, command: str | None = None) -> Iterator[Path]:
    """Hold the output folder for this run; another run on it stops at once."""
    from filelock import FileLock, Timeout

    target = check_output(out)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(target.parent / f".{target.name}.lock", timeout=0)
        info = target.parent / f".{target.name}.lock.json"
        try:
            lock.acquire()
        except Timeout:
            raise OutputBusy(f"{out}: another chokepoint run is writing it "
                             f"({_holder(info)}); wait for it, or choose another --out") from None
        write_file(info, json.dumps({
            "pid": os.getpid(), "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": command or " ".join(sys.argv)}))
    except OSError as e:
        raise os_error(e) from None
    try:
        yield target
    finally:
        info.unlink(missing_ok=True)
        lock.release()


def _holder(info: Path) -> str:
    try:
        d = json.loads(info.read_text(encoding="utf-8"))
        return f"pid {d['pid']} on {d['host']}, since {d['started']}: {d['command']}"
    except (OSError, ValueError, KeyError):
        return "its details are not readable"


@contextmanager
def staged(out: str | Path, marker: dict | None = None) -> Iterator[Path]:
    """A fresh folder to write a whole output into; on success it replaces ``out`` in one
    step, on failure it is removed and ``out`` is untouched."""
    target = check_output(out)
    inside = os.path.ismount(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-",
                                      dir=target if inside else target.parent))
    except OSError as e:
        raise os_error(e) from None
    try:
        yield stage
        write_file(stage / MARKER, json.dumps(marker or {}, indent=1, sort_keys=True))
        _open_up(stage, folder=True)
        if inside:
            _publish_into_mount(stage, target)
        else:
            _publish(stage, target)
    except OSError as e:
        raise os_error(e) from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically; False where the kernel or file system cannot."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _publish(stage: Path, target: Path) -> None:
    if not target.exists():
        os.rename(stage, target)
        return
    if _exchange(stage, target):
        shutil.rmtree(stage, ignore_errors=True)  # now the earlier folder
        return
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    os.rename(target, old)
    try:
        os.rename(stage, target)
    except OSError:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _publish_into_mount(stage: Path, target: Path) -> None:
    """A mount point cannot be renamed: replace its entries one by one (each atomically),
    then remove the earlier run's entries the new output does not have."""
    keep = {p.name for p in stage.iterdir()}
    for p in stage.iterdir():
        dest = target / p.name
        if p.is_dir():
            if dest.is_dir() and not dest.is_symlink():
                parked = target / f".{p.name}.old-{os.getpid()}"
                os.rename(dest, parked)
                os.rename(p, dest)
                shutil.rmtree(parked, ignore_errors=True)
            else:
                os.rename(p, dest)
        else:
            os.replace(p, dest)
    for p in target.iterdir():
        if p.name not in keep and not p.name.startswith(".") and p != stage:
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()


@functools.cache
def _umask() -> int:
    """The process's umask, read once: setting it to read it back is not thread-safe, so it
    happens at the first publish, before any worker thread of ours writes."""
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def _open_up(path: Path, folder: bool = False) -> None:
    """Temporary files and folders are private (0600, 0700); published ones get the modes the
    user's umask gives new ones."""
    os.chmod(path, (0o777 if folder else 0o666) & ~_umask())


def write_file(path: str | Path, text: str | bytes) -> None:
    """Write ``path`` whole or not at all: aside in its folder, then renamed into place."""
    path = Path(path)
    data = text.encode("utf-8") if isinstance(text, str) else text
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        _open_up(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def written(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` for a writer that needs a file name; renamed into
    place on success, removed on failure."""
    path = Path(path)
    check_path(path, folder=False)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # keep the suffixes: writers infer the format (".csv.gz") from them
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix="".join(path.suffixes),
                                   dir=path.parent)
        os.close(fd)
    except OSError as e:
        raise os_error(e) from None
    try:
        yield Path(tmp)
        _open_up(Path(tmp))
        os.replace(tmp, path)
    except OSError as e:
        raise os_error(e, path) from None
    finally:
        Path(tmp).unlink(missing_ok=True)

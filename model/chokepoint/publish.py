"""Results published whole: one writer per output folder, the folder built aside and swapped in.

- :func:`output_lock`: a lock (``filelock``) beside the output folder, held for the whole run,
  so a second run on the same ``--out`` stops at once, naming the first (pid, host, start,
  command), instead of mixing two runs' parts or files. Taking it clears what dead runs left
  (their staging folders); releasing it removes the lock file.
- :func:`staged`: a fresh folder on the target's own file system (symlinks are followed, so a
  link to another file system works). On success it replaces the target in one step
  (``renameat2(RENAME_EXCHANGE)``, where the kernel and file system have it; else two renames a
  moment apart): no file of an earlier run survives beside the new ones, and after any failure
  the earlier folder is as it was.
- :func:`write_file`: one file written aside and renamed into place.

A folder is ours only if our :data:`MARKER` in it says so: it lists every file the run wrote.
An existing folder is replaced only if it is empty or holds nothing but the files its marker
lists; anything else in it (the user's thesis beside a ``results.nc``, notes added to an earlier
output) is named and the run refused before any work, and nothing is deleted. A mount point
(bind mounts on the same file system included) cannot be swapped in one step, so it is refused
before any work too, and so is a target that is neither a regular file nor a folder (a device,
a FIFO).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import json
import os
import glob
import logging
import re
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import ChokepointError

#: Written into every output folder: the package version, the command, the time, and under
#: ``files`` every file the run wrote (paths relative to the folder, ``/``-separated).
MARKER = "chokepoint-run.json"
#: What a marker written before markers listed their files stands for: the files chokepoint
#: wrote then (top-level names, and figures as PNG and SVG).
_LEGACY_TOP = {"vulnerability.csv", "stage_contributions.csv", "results.nc",
               "sensitivity_summary.csv", "report.html", "ranking.csv"}
_MARKER_LIMIT = 4 << 20
RENAME_EXCHANGE = 2
_AT_FDCWD = -100
log = logging.getLogger("chokepoint")


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


def _kind(p: Path) -> str | None:
    """What ``p`` is when it is neither a regular file nor a folder (symlinks followed)."""
    import stat

    mode = os.stat(p).st_mode
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return {stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
            stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFSOCK: "a socket"}.get(
        stat.S_IFMT(mode), "not a regular file")


def check_path(out: str | Path, folder: bool = True) -> Path:
    """Fail now, before any work, when a file stands where ``out`` or a folder above it
    should be, or ``out`` is neither a regular file nor a folder; the path with symlinks
    followed."""
    target = target_of(out)
    for p in [target, *target.parents]:
        if p.exists():
            if p == target and (kind := _kind(p)):
                raise ChokepointError(f"{out}: is {kind}, not a "
                                      f"{'folder' if folder else 'regular file'}; chokepoint never "
                                      "replaces one; choose another --out")
            if p == target and not folder:
                if p.is_dir():
                    raise ChokepointError(f"{out}: is a folder; give a file name")
            elif not p.is_dir():
                what = "is a file" if p == target else f"is a file, so {out} cannot be made"
                raise ChokepointError(f"{out}: {p} {what}; choose another --out")
            break
    return target


def mount_points() -> set[str]:
    """Every mount point of this process's mount namespace (``/proc/self/mountinfo``), bind
    mounts on the same file system included, which :func:`os.path.ismount` misses."""
    try:
        with open("/proc/self/mountinfo", "rb") as f:
            text = f.read(16 << 20).decode("utf-8", "surrogateescape")
    except OSError:
        return set()
    # octal escapes (\040 for a space) in the mount point field
    unescape = lambda m: re.sub(r"\\([0-7]{3})", lambda o: chr(int(o[1], 8)), m)  # noqa: E731
    return {unescape(line.split()[4]) for line in text.splitlines() if len(line.split()) > 4}


def is_mount_point(target: Path) -> bool:
    return os.path.ismount(target) or str(target) in mount_points()


def _files(folder: Path) -> list[str]:
    """Every file (and symlink, and empty folder) under ``folder``, relative, ``/``-separated."""
    out = []
    for root, dirs, names in os.walk(folder):
        rel = Path(root).relative_to(folder)
        for d in list(dirs):
            if os.path.islink(os.path.join(root, d)):  # a link is an entry, never followed
                dirs.remove(d)
                names.append(d)
        out += [(rel / n).as_posix() for n in names]
        if not dirs and not names and root != str(folder):
            out.append(rel.as_posix() + "/")
    return sorted(out)


def _listed(folder: Path) -> set[str] | None:
    """The files ``folder``'s marker says chokepoint wrote, or None when it has no marker of
    ours (absent, not a regular file, not our JSON)."""
    path = folder / MARKER
    if path.is_symlink() or not path.is_file():
        return None
    try:
        with open(path, "rb") as f:
            d = json.loads(f.read(_MARKER_LIMIT))
    except (OSError, ValueError):
        return None
    if not isinstance(d, dict):
        return None
    if "files" not in d:  # written before markers listed their files
        return {MARKER, *(f for f in _files(folder) if f in _LEGACY_TOP or (
            f.startswith(("figures/", "ranking_")) and f.count("/") <= 1
            and f.endswith((".png", ".svg"))))}
    files = d["files"]
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        return None
    # a listed name is only ever a plain path inside the folder
    return {MARKER, *(f for f in files if f and not f.startswith("/")
                      and ".." not in f.split("/"))}


def foreign_files(folder: Path) -> list[str]:
    """The files in ``folder`` chokepoint did not write (its marker does not list them)."""
    ours = _listed(folder) or set()
    return [f for f in _files(folder) if f not in ours and not (
        f.endswith("/") and any(o.startswith(f) for o in ours))]


def _name_files(files: list[str], n: int = 5) -> str:
    return ", ".join(files[:n]) + (f" and {len(files) - n} more" if len(files) > n else "")


def check_output(out: str | Path) -> Path:
    """Fail now, before any work, when ``out`` cannot be an output folder: a mount point, or a
    folder holding files chokepoint did not write."""
    target = check_path(out)
    if target.is_dir():
        if is_mount_point(target):
            raise ChokepointError(
                f"{out}: is a mount point, which cannot be replaced in one step; give a folder "
                f"inside it (--out {Path(out) / 'results'}); nothing was changed")
        foreign = foreign_files(target)
        if foreign:
            raise ChokepointError(
                f"{out}: holds files chokepoint did not write ({_name_files(foreign)}); move "
                "them out or choose another --out; nothing was changed")
    return target


def _remove_ours(folder: Path) -> list[str]:
    """Remove what ``folder``'s marker lists, then the folder if nothing else is left; the
    files that are not ours (left in place)."""
    ours = _listed(folder)
    if ours is None:  # a staging folder cut short before its marker: all of it is ours
        ours = set(_files(folder))
    for f in sorted(ours, key=lambda f: -f.count("/")):
        p = folder / f.rstrip("/")
        try:
            if p.is_dir() and not p.is_symlink():
                os.rmdir(p)
            else:
                p.unlink()
        except OSError:
            pass
    for root, _, _ in sorted(os.walk(folder), key=lambda w: -len(w[0])):
        try:
            os.rmdir(root)  # only folders left empty
        except OSError:
            pass
    return _files(folder) if folder.exists() else []


def _clear_stale(target: Path) -> None:
    """Remove the staging folders dead runs left beside ``target`` (only called with the
    output's lock held, so no live run is writing them)."""
    for p in target.parent.glob(f".{glob.escape(target.name)}.*"):
        if re.fullmatch(rf"\.{re.escape(target.name)}\.(staging-.+|old-\d+)", p.name) and \
                p.is_dir() and not p.is_symlink():
            _keep_leftovers(p, _remove_ours(p), target)


def _keep_leftovers(p: Path, left: list[str], target: Path) -> None:
    if left:  # files that appeared in an output folder while it was being replaced
        kept = target.with_name(f"{target.name}.kept-{time.strftime('%Y%m%d-%H%M%S')}")
        os.rename(p, kept)
        log.warning("%s: files chokepoint did not write were found in the replaced output "
                    "folder (%s); kept in %s", target, _name_files(left), kept)


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
        _clear_stale(target)
    except OSError as e:
        _release(lock, info)
        raise os_error(e) from None
    try:
        yield target
    finally:
        _release(lock, info)


def _release(lock, info: Path) -> None:
    """Release the lock and leave no file of it: the lock file is unlinked while still held
    (filelock's flock backend re-checks, after locking, that the file it locked still has a
    name, so a waiter never holds a lock on an unlinked file), then released."""
    if not lock.is_locked:
        return
    try:
        info.unlink(missing_ok=True)
        Path(lock.lock_file).unlink(missing_ok=True)
    except OSError:
        pass
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
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
    except OSError as e:
        raise os_error(e) from None
    try:
        yield stage
        files = [f for f in _files(stage) if f != MARKER]
        write_file(stage / MARKER, json.dumps({**(marker or {}), "files": files}, indent=1,
                                              sort_keys=True))
        _open_up(stage, folder=True)
        check_output(out)  # again: files may have been put there while the run worked
        _publish(stage, target)
    except OSError as e:
        raise os_error(e) from None
    finally:
        if stage.exists():  # the new folder after a failure, or the earlier one after a swap
            _keep_leftovers(stage, _remove_ours(stage), target)


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
    """Swap ``stage`` in as ``target``; the earlier folder is left at ``stage`` (removed by
    the caller, only the files its marker lists)."""
    if not target.exists():
        os.rename(stage, target)
        return
    if _exchange(stage, target):
        return
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    os.rename(target, old)
    try:
        os.rename(stage, target)
    except OSError:
        os.rename(old, target)
        raise
    os.rename(old, stage)


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


def first_line(path: Path, limit: int = 4096) -> str:
    """The first line of a file (a gzip file's, uncompressed), at most ``limit`` bytes; ''
    when it cannot be read."""
    import gzip

    try:
        with (gzip.open if path.name.endswith(".gz") else open)(path, "rb") as f:
            head = f.read(limit)
    except (OSError, EOFError):
        return ""
    return head.split(b"\n", 1)[0].decode("utf-8-sig", "replace").rstrip("\r")


def check_ours(path: str | Path, ours: Callable[[Path], bool] | None) -> None:
    """An existing regular file at ``path`` is replaced only where ``ours(path)`` recognises
    it as chokepoint's own (its header); else, or without ``ours``, the run stops before any
    work and names it. A single file has no marker beside it: only its content can say."""
    path = Path(path)
    if path.is_file() and (ours is None or not ours(path)):
        raise ChokepointError(f"{path}: exists and chokepoint cannot tell it wrote it; "
                              "chokepoint never overwrites a file it did not write: remove "
                              "it or choose another --out (nothing was changed)")


def header_is(*lines: str) -> Callable[[Path], bool]:
    """``ours`` for a file chokepoint writes with one of these first lines."""
    return lambda p: first_line(p) in lines


def header_starts(prefix: str) -> Callable[[Path], bool]:
    return lambda p: first_line(p).startswith(prefix)


@contextmanager
def written(path: str | Path, ours: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """A temporary path beside ``path`` for a writer that needs a file name; renamed into
    place on success, removed on failure. An existing file is replaced only if ``ours``
    recognises it (:func:`check_ours`)."""
    path = Path(path)
    check_path(path, folder=False)
    check_ours(path, ours)
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

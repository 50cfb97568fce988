"""Users' constraint families: from Python files or modules, and declared in YAML.

``load_extension("rules.py", base)`` executes a file (relative to ``base``) as a fresh module,
or imports a module by name, and collects the :class:`ConstraintFamily` objects it defines. The
file's content and SHA-256 travel with a run's tasks (:func:`extension_contents`), so a worker
runs exactly the code the run started with without seeing the user's folder, and a resumed run
notices a changed rule.

Families declared in a scenario's YAML (``constraints:``) are built by
:mod:`.yaml_families`; :func:`scenario_families` gathers both kinds and checks their names.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import linecache
import re
import sys
import traceback
import types
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import ChokepointError, ScenarioError
from .families import ConstraintFamily

# -- Python files and modules ----------------------------------------------------------------


@dataclass(frozen=True)
class Extension:
    """A loaded file or module of users' families."""

    ref: str  # as the scenario wrote it
    target: str  # absolute file path, module name, or the file's name when loaded from content
    sha256: str
    families: tuple[ConstraintFamily, ...]
    #: A file's content, exactly as executed (None for a module): what a run sends its workers.
    content: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def label(self) -> str:
        """The file's name (or the module's): no folder of the user's machine."""
        return Path(self.ref).name if is_file_ref(self.ref) else self.ref

    def describe(self) -> dict:
        return {"extension": self.label, "sha256": self.sha256,
                "families": [f.name for f in self.families]}


_LOADED: dict[tuple[str, str], Extension] = {}

#: Files' contents sent with a task, by ref: loaded from these, never from the user's folder.
#: A context variable, so that it holds in one task's thread only (Dask runs tasks in threads).
_CONTENTS: ContextVar[Mapping[str, bytes]] = ContextVar(
    "chokepoint_extension_contents", default=types.MappingProxyType({}))


def is_file_ref(ref: str) -> bool:
    return ref.endswith(".py") or "/" in ref or "\\" in ref


@contextmanager
def extension_contents(contents: Mapping[str, bytes]) -> Iterator[None]:
    """Within: :func:`load_extension` of a file ``ref`` in ``contents`` executes those bytes and
    never opens the file, so a worker needs nothing of the user's folder. The bytes are what
    the run read (:attr:`Extension.content`); their SHA-256 is checked as a file's is."""
    token = _CONTENTS.set(dict(contents))
    try:
        yield
    finally:
        _CONTENTS.reset(token)


def loaded_content(sha256: str) -> bytes | None:
    """The content of the file extension this process loaded with that SHA-256 (None when it
    loaded none: a module, or not loaded here)."""
    return next((e.content for e in _LOADED.values()
                 if e.sha256 == sha256 and e.content is not None), None)


def load_extension(ref: str, base: Path | None = None, where: str = "extensions",
                   sha256: str | None = None) -> Extension:
    """Load ``ref`` (a ``.py`` file relative to ``base``, or an importable module name) and
    collect its families. With ``sha256``, the source must still be that content."""
    content = path = None
    if is_file_ref(ref):
        content = _CONTENTS.get().get(ref)
        if content is not None:  # sent by the run: the file is not read
            path, target = None, Path(ref).name
        else:
            path = (Path(base or Path.cwd()) / ref).resolve()
            if not path.exists():
                raise ScenarioError(f"{where}: {ref}: no such extension file ({path})")
            from ..errors import read_bytes

            try:  # a regular file, read with a bound (never /dev/zero whole)
                content = read_bytes(path, "extension file", ScenarioError)
            except ScenarioError as e:
                raise ScenarioError(f"{where}: {ref}: {str(e).split(': ', 1)[-1]}") from None
            target = str(path)
        digest = hashlib.sha256(content).hexdigest()
    else:
        if not re.fullmatch(r"[A-Za-z_][\w.]*", ref):
            raise ScenarioError(f"{where}: {ref!r} is neither a .py file nor a module name")
        beside = Path(base or Path.cwd()) / ref
        if beside.exists():  # notes.txt, rules.yaml: a file, but not Python
            raise ScenarioError(f"{where}: {ref}: an extension is a Python file ending in .py "
                                "(or an importable module name); this file is not one")
        target = ref
        spec = importlib.util.find_spec(ref) if "." not in ref or \
            importlib.util.find_spec(ref.split(".")[0]) else None
        if spec is None:
            raise ScenarioError(f"{where}: no module named {ref!r} (give a .py file, or "
                                "install the module)")
        origin = spec.origin and Path(spec.origin)
        digest = hashlib.sha256(origin.read_bytes()).hexdigest() if origin and \
            origin.is_file() else "builtin"
    if sha256 is not None and sha256 != digest:
        raise ChokepointError(f"{where}: {ref} changed since the run started (sha256 "
                              f"{sha256[:12]} -> {digest[:12]}); re-run to use the new rules")
    got = _LOADED.get((target, digest))
    if got is None and path is None and content is not None:  # this process read that file
        got = next((e for (t, d), e in _LOADED.items() if d == digest and e.content
                    and Path(t).name == target), None)
    if got is None:
        module = _exec_file(content, path, digest, ref, where) if is_file_ref(ref) \
            else _import(ref, where)
        label = Path(ref).name if is_file_ref(ref) else ref
        found = tuple(replace(v, source=f"{label}#sha256={digest[:12]}")
                      for v in vars(module).values() if isinstance(v, ConstraintFamily))
        if not found:
            raise ScenarioError(f"{where}: {ref} defines no constraint family (decorate a "
                                "function with @chokepoint.constraint_family)")
        got = _LOADED[(target, digest)] = Extension(ref, target, digest, found, content)
    return got if got.ref == ref else replace(got, ref=ref)


def _exec_file(content: bytes, path: Path | None, digest: str, ref: str, where: str):
    """Execute exactly the bytes that were hashed (a file read twice could differ) as a fresh
    module; no bytecode is cached beside the user's file."""
    name = f"chokepoint_extension_{digest[:16]}"
    # content sent by the run is named by its file and digest, and its lines are kept for
    # tracebacks: no file of that name is looked for on this machine
    filename = str(path) if path else f"{Path(ref).name} (sha256 {digest[:12]})"
    module = types.ModuleType(name)
    if path:
        module.__file__ = str(path)
    sys.modules[name] = module
    try:
        code = compile(content, filename, "exec", dont_inherit=True)
        if path is None:
            text = content.decode("utf-8", "replace")
            linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
        exec(code, module.__dict__)
    except SyntaxError as e:
        del sys.modules[name]
        if e.lineno is None:  # null bytes, or not text at all
            raise ScenarioError(f"{where}: {ref}: not Python source ({e.msg})") from None
        raise ScenarioError(f"{where}: {ref}:{e.lineno}: syntax error: {e.msg}") from None
    except SystemExit as e:  # sys.exit at import would end the run without a word
        del sys.modules[name]
        raise ScenarioError(f"{where}: {ref}: called sys.exit({e.code!r}) while being loaded; "
                            "an extension defines constraint families, it may not end the "
                            "run") from None
    except Exception as e:  # the user's code: where it failed, in one line
        del sys.modules[name]
        line = next((f.lineno for f in reversed(traceback.extract_tb(e.__traceback__))
                     if f.filename == filename), None)
        at = f":{line}" if line else ""
        raise ScenarioError(f"{where}: {ref}{at}: {type(e).__name__}: {e}") from None
    return module


def _import(name: str, where: str):
    try:
        return importlib.import_module(name)
    except Exception as e:
        raise ScenarioError(f"{where}: importing {name}: {type(e).__name__}: {e}") from None


def family_source(family: ConstraintFamily) -> str | None:
    """The file or module a family can be loaded from in another process, or None when it was
    defined where no other process can load it (an interactive session)."""
    module = sys.modules.get(family.rule.__module__)
    if module is None:
        return None
    if family.rule.__module__.startswith("chokepoint_extension_"):
        return getattr(module, "__file__", None)
    if family.rule.__module__ == "__main__":
        path = getattr(module, "__file__", None)
        return path if path and Path(path).is_file() else None
    return family.rule.__module__


# -- a scenario's families --------------------------------------------------------------------


def scenario_families(extensions: Sequence[str], constraints: Mapping[str, object],
                      base: Path | None, where, origin: str = "<scenario>",
                      blocs: Mapping[str, dict] | None = None
                      ) -> tuple[list[Extension], list[ConstraintFamily]]:
    """Every family a scenario declares: its extensions' and its YAML constraints'
    (:mod:`.yaml_families`), in order; ``where(key)`` gives the file:line prefix of a key."""
    from .families import check_families
    from .yaml_families import yaml_family

    loaded = [load_extension(ref, base, where(("extensions", i)))
              for i, ref in enumerate(extensions)]
    fams = [f for e in loaded for f in e.families]
    for name, spec in constraints.items():
        def at(*keys, name=name):
            return where(("constraints", name, *keys))
        fams.append(yaml_family(name, spec, at, origin, blocs, base))
    seen: dict[str, ConstraintFamily] = {}
    for f in fams:
        if f.name in seen:
            raise ScenarioError(f"{where(('constraints',) if f.text else ('extensions',))}: two "
                                f"constraint families are named {f.name!r} ({seen[f.name].source}"
                                f" and {f.source})")
        seen[f.name] = f
    try:
        check_families(fams)
    except ChokepointError as e:
        raise ScenarioError(f"{where(('constraints',) if constraints else ('extensions',))}: "
                            f"{e}") from None
    return loaded, fams


def check_selection(families: Sequence[ConstraintFamily], networks: Mapping[str, object],
                    blocs: Mapping[str, dict] | None = None, build: bool = True
                    ) -> dict[str, dict[str, int]]:
    """Check the families against the run's networks before any solve: a YAML family's
    values exist and it selects some row; with ``build``, a Python family builds (its rule
    runs once per network) and states some row. Returns each one's rows per network. A family
    with ``allow_empty`` may state none."""
    out = {}
    for f in families:
        if f.declared is not None:
            out[f.name] = f.declared.check(networks)
            continue
        if not build:
            continue
        out[f.name] = rows = {m: _python_rows(f, net, blocs) for m, net in networks.items()}
        if not any(rows.values()) and not f.allow_empty:
            raise ChokepointError(f"constraint family {f.name} ({f.source}) states no row in "
                                  f"any network of the run ({', '.join(networks)}); "
                                  "declare it with allow_empty=True to accept that")
    return out


def _python_rows(family: ConstraintFamily, network, blocs) -> int:
    """Rows a Python family states in a network: its rule, built once into a model of its
    first case without the core rows."""
    from .arrays import arrays
    from .formulation import formulations
    from .model import build_model

    case = min(family.cases, key=lambda c: c.value)
    form = formulations([case], [family])[case]
    m = build_model(arrays(network), form, core_rows=False, blocs=blocs)
    return len(m.component(family.name))

"""Hatchling build hook: the commit a distribution is built from, recorded in its metadata.

An installed wheel has no checkout to ask, so ``chokepoint bench`` (runs.csv) and a run's
provenance read the commit from ``*.dist-info/extra_metadata/BUILD_COMMIT``. A wheel built from
an sdist takes it from the sdist's own ``BUILD_COMMIT``, written when the sdist was built.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

NAME = "BUILD_COMMIT"


def _git(root: Path) -> str | None:
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"],
                              capture_output=True, text=True, timeout=30)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode:
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


class CommitHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict) -> None:
        root = Path(self.root)
        commit = _git(root)
        if commit is None and (root / NAME).is_file():
            commit = (root / NAME).read_text(encoding="utf-8").strip() or None
        if commit is None:
            return
        self._tmp = tempfile.TemporaryDirectory(prefix="chokepoint-build-")
        path = Path(self._tmp.name) / NAME
        path.write_text(commit + "\n", encoding="utf-8")
        if self.target_name == "wheel":
            build_data["extra_metadata"][str(path)] = NAME
        elif self.target_name == "sdist":
            build_data["force_include"][str(path)] = NAME

    def finalize(self, version: str, build_data: dict, artifact_path: str) -> None:
        if getattr(self, "_tmp", None) is not None:
            self._tmp.cleanup()

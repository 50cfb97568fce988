"""Case formulations: the families that apply to a case. Cases with the same families share
one formulation (optimistic and pessimistic A differ only in the objective's sense); each
formulation has one compact model (:mod:`.model`) and one engine."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..cases import Case
from ..errors import ChokepointError
from .arrays import NetworkArrays
from .families import CORE_FAMILIES, FLOW, LAYOUT, ConstraintFamily, CoreFamily


class ExtensionError(ChokepointError):
    """A user constraint family that cannot be built or is not a linear rule of the LP."""


@dataclass(frozen=True)
class Formulation:
    """The families of one or more cases that share them, and the layout of their variable."""

    layout: str
    cases: tuple[Case, ...]
    core: tuple[CoreFamily, ...]
    user: tuple[ConstraintFamily, ...]

    @property
    def name(self) -> str:
        return "+".join(c.value for c in self.cases)

    @property
    def families(self) -> tuple:
        return self.core + self.user


def formulations(cases: Iterable[Case], user: Iterable[ConstraintFamily] = (),
                 pinning: bool = False) -> dict[Case, Formulation]:
    """Each case's formulation; cases with the same families share one object."""
    user = tuple(user)
    by_key: dict[tuple, list[Case]] = {}
    for case in Case:
        core = tuple(f for f in CORE_FAMILIES.values()
                     if case in f.cases and (pinning or not f.optional))
        mine = tuple(f for f in user if case in f.cases)
        by_key.setdefault((LAYOUT[case], core, mine), []).append(case)
    out = {}
    for (layout, core, mine), group in by_key.items():
        f = Formulation(layout, tuple(group), core, mine)
        out.update({c: f for c in group})
    wanted = set(cases)
    return {c: f for c, f in out.items() if c in wanted}


def layout_size(d: NetworkArrays, layout: str) -> int:
    return d.n_arcs if layout == FLOW else len(d.interior_idx)

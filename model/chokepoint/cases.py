"""The four cases of the vulnerability index: what each assumes and which way it optimises."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .errors import ScenarioError, did_you_mean


class Case(str, Enum):
    PROPORTIONAL = "proportional"
    OPTIMISTIC = "optimistic"
    PESSIMISTIC_A = "pessimistic_a"
    PESSIMISTIC_B = "pessimistic_b"

    @property
    def spec(self) -> "CaseSpec":
        return CASES[self]

    @classmethod
    def parse(cls, word: str, where: str = "cases") -> "Case":
        try:
            return cls(str(word).strip().lower().replace(" ", "_").replace("-", "_"))
        except ValueError:
            names = [c.value for c in cls]
            raise ScenarioError(
                f"{where}: unknown case {word!r}{did_you_mean(str(word), names)}; "
                f"choose from {', '.join(names)}"
            ) from None


@dataclass(frozen=True)
class CaseSpec:
    title: str
    sense: str  # "minimize" or "maximize"
    description: str


CASES: dict[Case, CaseSpec] = {
    Case.PROPORTIONAL: CaseSpec(
        "Proportional (base case)",
        "minimize",
        "Every non-focal node passes on the touched share of its observed inflow to each of "
        "its outflows; material from uncertain sources carries the share of the node it "
        "enters. The solution is unique.",
    ),
    Case.OPTIMISTIC: CaseSpec(
        "Optimistic (lower bound)",
        "minimize",
        "Within each country, touched imports go to non-battery uses first: the least "
        "touched material reaches the product that the observed flows allow.",
    ),
    Case.PESSIMISTIC_A: CaseSpec(
        "Pessimistic A (upper bound on observed data)",
        "maximize",
        "Within each country, touched imports go to the battery chain first; material from "
        "uncertain sources is clean.",
    ),
    Case.PESSIMISTIC_B: CaseSpec(
        "Pessimistic B (upper bound with data gaps attributed)",
        "maximize",
        "As pessimistic A, and every uncertain source may carry touched material up to the "
        "focal set's own mine, refining and cathode output (P_F).",
    ),
}

DEFAULT_CASES: tuple[Case, ...] = tuple(Case)

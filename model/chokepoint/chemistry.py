"""Cathode chemistries, the materials each contains, and chemistry-material pairs."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ScenarioError, did_you_mean

#: Materials with a network, by name; symbols are accepted as aliases.
MATERIALS: dict[str, str] = {
    "lithium": "Li", "cobalt": "Co", "nickel": "Ni", "manganese": "Mn", "phosphorus": "P",
}

#: The materials each chemistry is made of (the Leontief inputs of its cathode).
CHEMISTRIES: dict[str, tuple[str, ...]] = {
    "NCM": ("lithium", "nickel", "cobalt", "manganese"),
    "NCA": ("lithium", "nickel", "cobalt"),
    "LFP": ("lithium", "phosphorus"),
    "LMO": ("lithium", "manganese"),
    "LCO": ("lithium", "cobalt"),
}

CHEMISTRY_ALIASES = {"NMC": "NCM"}

DEFAULT_PAIRS: tuple[str, ...] = (
    "LFP-lithium", "NCM-lithium", "NCM-cobalt", "NCM-nickel", "NCM-manganese",
)


#: Chemistries in the paper's order (its tables and figures lead with LFP, then NCM).
CHEMISTRY_ORDER: tuple[str, ...] = ("LFP", "NCM", "NCA", "LMO", "LCO")
AGGREGATE = "all"  # material label of a chemistry's aggregate index


def pair_key(chemistry: str, material: str) -> tuple[int, int]:
    """Sort key of a (chemistry, material) in the paper's order, everywhere the pairs are shown:
    LFP-Li, NCM-Li, NCM-Co, NCM-Ni, NCM-Mn, NCM (the aggregate), then the other pairs."""
    chem = CHEMISTRY_ORDER.index(chemistry) if chemistry in CHEMISTRY_ORDER else 99
    name = f"{chemistry}-{material}"
    if material == AGGREGATE:
        return chem, 99
    if name in DEFAULT_PAIRS:
        return chem, DEFAULT_PAIRS.index(name)
    mats = CHEMISTRIES.get(chemistry, ())
    return chem, 10 + (mats.index(material) if material in mats else 50)


def pair_label(chemistry: str, material: str) -> str:
    """``NCM-Co``; the aggregate is the chemistry alone (``NCM``)."""
    return chemistry if material == AGGREGATE else f"{chemistry}-{MATERIALS[material]}"


@dataclass(frozen=True, order=True)
class Pair:
    chemistry: str
    material: str

    def __str__(self) -> str:
        return f"{self.chemistry}-{self.material}"


def parse_material(word: str, where: str) -> str:
    w = str(word).strip()
    by_symbol = {sym.lower(): name for name, sym in MATERIALS.items()}
    name = by_symbol.get(w.lower(), w.lower())
    if name not in MATERIALS:
        raise ScenarioError(
            f"{where}: unknown material {w!r}{did_you_mean(w, list(MATERIALS))}; "
            f"choose from {', '.join(MATERIALS)}"
        )
    return name


def parse_chemistry(word: str, where: str) -> str:
    w = str(word).strip().upper()
    w = CHEMISTRY_ALIASES.get(w, w)
    if w not in CHEMISTRIES:
        raise ScenarioError(
            f"{where}: unknown chemistry {word!r}{did_you_mean(w, list(CHEMISTRIES))}; "
            f"choose from {', '.join(CHEMISTRIES)} (NMC is accepted for NCM)"
        )
    return w


def parse_pair(text: str, where: str = "pairs") -> Pair:
    """``"LFP-lithium"``, ``"NMC-Co"``, ``"ncm/nickel"`` -> Pair."""
    raw = str(text).strip()
    for sep in ("-", "/", ":", " "):
        if sep in raw:
            chem, mat = (p.strip() for p in raw.split(sep, 1))
            break
    else:
        all_pairs = [f"{c}-{m}" for c, ms in CHEMISTRIES.items() for m in ms]
        raise ScenarioError(
            f"{where}: pair {raw!r} is not CHEMISTRY-material{did_you_mean(raw, all_pairs)}"
        )
    chemistry = parse_chemistry(chem, f"{where}: {raw!r}")
    material = parse_material(mat, f"{where}: {raw!r}")
    if material not in CHEMISTRIES[chemistry]:
        raise ScenarioError(
            f"{where}: {chemistry} contains no {material} "
            f"(it is made of {', '.join(CHEMISTRIES[chemistry])})"
        )
    return Pair(chemistry, material)

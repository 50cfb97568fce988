"""Focal sets: the countries (or blocs) whose touch the index measures, each counted at some or
all supply-chain steps (mining, refining, cathode)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from . import countries
from .errors import ScenarioError, did_you_mean
from .network import FOCAL_STAGES, Network

ALL_STAGES: tuple[str, ...] = tuple(FOCAL_STAGES)  # mining, refining, ..., vehicle
#: Cumulative stage sets of the decomposition, from the cathode stage upstream.
STAGE_STEPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cathode", ("cathode",)),
    ("refining", ("cathode", "refining")),
    ("mining", ("cathode", "refining", "mining")),
)


def parse_stages(words: Iterable[str], where: str) -> frozenset[str]:
    out = set()
    for w in words:
        s = str(w).strip().lower()
        if s not in FOCAL_STAGES:
            raise ScenarioError(
                f"{where}: unknown stage {w!r}{did_you_mean(s, ALL_STAGES)}; "
                f"choose from {', '.join(ALL_STAGES)}"
            )
        out.add(s)
    if not out:
        raise ScenarioError(f"{where}: empty list of stages")
    return frozenset(out)


@dataclass(frozen=True)
class FocalSet:
    """A labelled set of members (country keys), each with the stages it is counted at."""

    label: str
    members: tuple[tuple[str, frozenset[str]], ...]

    @classmethod
    def of(cls, label: str, members: Iterable[str], stages: Iterable[str] = ALL_STAGES):
        """A focal set of names or keys (ISO3, owner names), all counted at ``stages``."""
        st = frozenset(stages)
        return cls(label, tuple(sorted((k, st) for k in {countries.key(m) for m in members})))

    def restricted(self, stages: Iterable[str]) -> "FocalSet":
        """The same members counted only at the given stages (intersected with their own)."""
        keep = frozenset(stages)
        return FocalSet(self.label, tuple((k, st & keep) for k, st in self.members if st & keep))

    def nodes(self, network: Network) -> frozenset[str]:
        """The network's nodes this focal set owns."""
        stage_of = {st: name for name, sts in FOCAL_STAGES.items() for st in sts}
        keyed = network._cache.get("owner_keys")
        if keyed is None:
            keyed = network._cache["owner_keys"] = {
                o: countries.key(o) for o in network.nodes["owner"].unique()
            }
        members = dict(self.members)
        out = []
        for name, owner, stage in zip(network.nodes.index, network.nodes["owner"],
                                      network.nodes["stage"]):
            if stage in stage_of and stage_of[stage] in members.get(keyed[owner], ()):
                out.append(name)
        return frozenset(out)

    def describe(self) -> str:
        parts = []
        for k, st in self.members:
            name = countries.label(k)
            parts.append(name if st == frozenset(ALL_STAGES) else
                         f"{name} ({', '.join(s for s in ALL_STAGES if s in st)})")
        return "; ".join(parts) or "(empty)"


def load_blocs(path: str | Path) -> dict[str, dict]:
    """Named blocs from a YAML file: name -> {description, countries[, stages]}."""
    from . import yamlio
    from .errors import read_text

    path = Path(path)
    blocs, _ = yamlio.load(read_text(path, "blocs file", ScenarioError), str(path),
                           ScenarioError, max_values=100_000)
    blocs = blocs or {}
    if not isinstance(blocs, dict):
        raise ScenarioError(f"{path}: a blocs file maps bloc names to lists of countries")
    out = {}
    for name, body in blocs.items():
        body = {"countries": body} if isinstance(body, list) else body
        if not isinstance(body, dict) or "countries" not in body:
            raise ScenarioError(f"{path}: bloc {name!r}: give a list of countries")
        out[str(name)] = {"description": body.get("description", str(name)),
                          **{k: v for k, v in body.items() if k in ("countries", "stages")}}
    return out


def _expand_bloc(body: Mapping, blocs: Mapping[str, dict] | None, here: str) -> dict:
    """``{bloc: NAME[, stages]}`` -> the bloc's ``{countries, stages}``."""
    name = str(body["bloc"])
    extra = set(body) - {"bloc", "stages"}
    if extra:
        bad = sorted(extra)[0]
        raise ScenarioError(f"{here}: unknown key {bad!r}{did_you_mean(bad, ['bloc', 'stages'])}")
    blocs = blocs or {}
    if name not in blocs:
        raise ScenarioError(f"{here}.bloc: unknown bloc {name!r}"
                            f"{did_you_mean(name, list(blocs))}; known: "
                            f"{', '.join(blocs) or 'none (no blocs file)'}")
    out = {"countries": list(blocs[name]["countries"])}
    stages = body.get("stages", blocs[name].get("stages"))
    if stages is not None:
        out["stages"] = stages
    return out


def parse_focal(spec: Mapping, known_owners: list[str], where: str = "focal",
                blocs: Mapping[str, dict] | None = None) -> list[FocalSet]:
    """Focal sets from the scenario mapping ``label -> members``.

    A member is a country name, or ``{country: NAME, stages: [...]}``; a set may also be
    ``{countries: [...], stages: [...]}`` to restrict every member alike, or
    ``{bloc: NAME[, stages: [...]]}`` for a bloc of ``blocs`` (see :func:`load_blocs`).
    """
    out = []
    for label, body in spec.items():
        here = f"{where}.{label}"
        stages = ALL_STAGES
        if isinstance(body, Mapping) and "bloc" in body:
            body = _expand_bloc(body, blocs, here)
        if isinstance(body, Mapping):
            extra = set(body) - {"countries", "stages"}
            if extra:
                bad = sorted(extra)[0]
                raise ScenarioError(f"{here}: unknown key {bad!r}"
                                    f"{did_you_mean(bad, ['countries', 'stages', 'bloc'])}")
            stages = parse_stages(body.get("stages", ALL_STAGES), f"{here}.stages")
            body = body.get("countries", [])
        if isinstance(body, str):
            body = [body]
        if not isinstance(body, list):
            raise ScenarioError(f"{here}: expected a list of countries")
        members: dict[str, frozenset[str]] = {}
        for i, m in enumerate(body):
            st = frozenset(stages)
            if isinstance(m, Mapping):
                extra = set(m) - {"country", "stages"}
                if extra or "country" not in m:
                    raise ScenarioError(f"{here}[{i}]: a member is a name or "
                                        "{country: NAME, stages: [...]}")
                st = parse_stages(m.get("stages", ALL_STAGES), f"{here}[{i}].stages")
                m = m["country"]
            k = countries.resolve(str(m), known_owners, f"{here}[{i}]")
            members[k] = members.get(k, frozenset()) | st
        if not members:
            raise ScenarioError(f"{here}: empty focal set: name at least one country")
        out.append(FocalSet(str(label), tuple(sorted(members.items()))))
    return out


def bloc_countries(body: Mapping) -> list[str]:
    """The countries of a bloc as written (a member may be ``{country: NAME, stages: [...]}``);
    users' constraints select by these, whatever stages a focal set would count."""
    return [str(c["country"]) if isinstance(c, Mapping) else str(c)
            for c in body.get("countries", ())]

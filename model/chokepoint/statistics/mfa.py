"""The material-flow step: a balanced network from production and trade statistics.

Follows method.md section 2. Every arc records the rule that made it (``provenance``):

==========================  =================================================================
``cathode_production``      c_cath_poss -> chemistry: cathode output x share x mass fraction
``cathode_surplus``         c_cath_poss -> NBCP: refined material received beyond its needs
``cathode_shortfall``       MRMT -> c_cath_poss: needs beyond what it received
``refined_domestic``        c_ref -> c_cath_poss (or NCPC): refining output it did not export
``refined_trade``           e_ref -> i_cath_poss: a refiner's exports to a cathode maker
``refined_to_non_maker``    e_ref -> NCPC: a refiner's exports to a country making no cathode
``refined_from_non_refiner``  TFCR -> i_cath_poss: exports of non-refiners to a cathode maker
``refining_unaccounted``    UARP -> c_ref: exports beyond refining output
``refining``                c_ref_poss -> c_ref: refining output
``refining_surplus``        c_ref_poss -> NTRM: raw material received beyond refining output
``refining_shortfall``      URMS -> c_ref_poss: refining output beyond raw material received
``mine_domestic``           c_mine -> c_ref_poss (or TTCR): mine output it did not export
``raw_trade``               e_mine -> i_ref_poss: a miner's exports to a refiner
``raw_to_non_refiner``      e_mine -> TTCR: a miner's exports to a country that does not refine
``raw_from_non_miner``      TFCM -> i_ref_poss: exports of non-miners to a refiner
``recycling``               o_recyc -> i_ref_poss: recovered material (counterfactual edits)
==========================  =================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from ..chemistry import MATERIALS
from ..errors import ChokepointError, did_you_mean
from .inputs import PROFILES, Inputs
from ..network import Network, Stage, node_name

MRMT, URMS, UARP, TFCR, TFCM = ("MRMT", "URMS", "UARP", "TFCR", "TFCM")
NBCP, NTRM, TTCR, NCPC = ("NBCP", "NTRM", "TTCR", "NCPC")


@dataclass
class Build:
    """A network under construction: arcs summed by (source, target), with their rules."""

    tonnes: dict[tuple[str, str], float] = field(default_factory=dict)
    rules: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    missing_mine_output: dict[str, float] = field(default_factory=dict)

    def add(self, source: str, target: str, tonnes: float, rule: str) -> None:
        key = (source, target)
        self.tonnes[key] = self.tonnes.get(key, 0.0) + tonnes
        if rule not in self.rules.setdefault(key, []):
            self.rules[key].append(rule)

    def inflow(self, node: str) -> float:
        return sum(v for (s, t), v in self.tonnes.items() if t == node)

    def outflow(self, node: str) -> float:
        return sum(v for (s, t), v in self.tonnes.items() if s == node)


def _n(owner: str, stage: Stage) -> str:
    return node_name(owner, stage)


def _route(b: Build, trade: pd.DataFrame, *, sender, receiver, senders, receivers,
           sender_stage: Stage, receiver_stage: Stage, outside: str, unknown: str,
           rules: tuple[str, str, str]) -> None:
    """Trade arcs of one stage: a producer's exports go to the receiving pool, or to the
    ``outside`` sink when the importer is not a processor of the next stage; exports of
    non-producers to a processor enter through the ``unknown`` source."""
    for e, i, tonnes in trade[["exporter", "importer", "tonnes"]].itertuples(index=False):
        src, dest = sender(e), receiver(i)
        if src in senders:
            if dest in receivers:
                b.add(_n(src, sender_stage), _n(dest, receiver_stage), tonnes, rules[0])
            else:
                b.add(_n(src, sender_stage), outside, tonnes, rules[1])
        elif dest in receivers:
            b.add(unknown, _n(dest, receiver_stage), tonnes, rules[2])


def build_network(material: str, inputs: Inputs, profile: str = "paper") -> Network:
    """The balanced network of one material for the inputs' year."""
    if material not in MATERIALS:
        raise ChokepointError(f"unknown material {material!r}"
                              f"{did_you_mean(material, list(MATERIALS))}")
    if profile not in PROFILES:
        raise ChokepointError(f"unknown profile {profile!r}{did_you_mean(profile, PROFILES)}; "
                              f"choose from {', '.join(PROFILES)}")
    b = Build()
    mine = inputs.mine(material, profile)
    refining = inputs.refining(material)
    makers = inputs.cathode_makers
    refiner = lambda c: inputs.refiner_of(c, material)  # noqa: E731
    raw = inputs.trade(material, "raw", profile)
    refined = inputs.trade(material, "refined", profile)
    mine_, ref_poss, ref, cath = Stage.MINE, Stage.REFINING_POOL, Stage.REFINING, \
        Stage.CATHODE_POOL

    # 3. products
    for (country, chem), tonnes in inputs.cathode(material, profile).items():
        if tonnes > 0:
            b.add(_n(country, cath), chem, tonnes, "cathode_production")

    # 2 and 5. refined trade; each refiner keeps what it did not export
    exports = refined.assign(src=refined["exporter"].map(refiner)).groupby("src")["tonnes"].sum()
    for r, produced in refining.items():
        domestic = produced - float(exports.get(r, 0.0))
        if domestic < 0:
            b.add(UARP, _n(r, ref), -domestic, "refining_unaccounted")
        elif domestic > 0:
            target = _n(r, cath) if r in makers else NCPC
            b.add(_n(r, ref), target, domestic, "refined_domestic")
    _route(b, refined, sender=refiner, receiver=lambda i: i, senders=refining,
           receivers=set(makers), sender_stage=ref, receiver_stage=cath, outside=NCPC,
           unknown=TFCR, rules=("refined_trade", "refined_to_non_maker",
                                "refined_from_non_refiner"))

    # 4. cathode pools balance: surplus leaves as non-battery cathode, shortfall is unknown
    unfed = inputs.unfed_cathode_pools(material, profile)
    for c in makers:
        node = _n(c, cath)
        gap = b.inflow(node) - b.outflow(node)
        if gap > 0:
            b.add(node, NBCP, gap, "cathode_surplus")
        elif gap < 0 and not unfed:
            b.add(MRMT, node, -gap, "cathode_shortfall")

    # 6. refining
    for r, produced in refining.items():
        b.add(_n(r, ref_poss), _n(r, ref), produced, "refining")

    # 1 and 8. raw trade; each miner keeps what it did not export
    raw_exports = raw.groupby("exporter")["tonnes"].sum()
    for m, produced in mine.items():
        if m == "Other":
            continue  # no trade statistics can be matched to it
        domestic = produced - float(raw_exports.get(m, 0.0))
        if domestic < 0:
            b.missing_mine_output[m] = -domestic
            continue
        if domestic > 0:
            own = refiner(m)
            b.add(_n(m, mine_), _n(own, ref_poss) if own in refining else TTCR, domestic,
                  "mine_domestic")
    _route(b, raw, sender=lambda e: e, receiver=refiner,
           senders={m: v for m, v in mine.items() if m != "Other"}, receivers=set(refining),
           sender_stage=mine_, receiver_stage=ref_poss, outside=TTCR, unknown=TFCM,
           rules=("raw_trade", "raw_to_non_refiner", "raw_from_non_miner"))

    for r in inputs.recycling(material):
        b.add(_n(r["owner"], Stage.RECYCLING), _n(refiner(r["into"]), ref_poss), r["tonnes"],
              "recycling")

    # 7 and 9. refining pools balance (a zero shortfall arc is kept, as the published flows do)
    for r, produced in refining.items():
        node = _n(r, ref_poss)
        received = b.inflow(node)
        if received > produced:
            b.add(node, NTRM, received - produced, "refining_surplus")
        b.add(URMS, node, max(produced - received, 0.0), "refining_shortfall")

    rows = [(node_name(s, Stage.UNCERTAIN_SOURCE) if s in (MRMT, URMS, UARP, TFCR, TFCM) else s,
             node_name(t, Stage.OTHER_SINK) if t in (NBCP, NTRM, TTCR, NCPC) else t,
             v, "+".join(b.rules[s, t])) for (s, t), v in b.tonnes.items()]
    arcs = pd.DataFrame(rows, columns=["source", "target", "tonnes", "provenance"])
    net = Network.from_arcs(arcs, material=material, year=inputs.year,
                            origin=f"{material} {inputs.year}, profile {profile}",
                            check_balance=not unfed)
    net._cache["missing_mine_output"] = b.missing_mine_output
    return net

"""Seeded synthetic supply chains for benchmarks: N countries, S stages, power-law trade.

Stages, in order: mining, refining (pool and refiner), precursor, cathode (pool), cell, pack,
vehicle; S = 4 stops at the cathode pool, 5 adds cells, 6 packs, 7 vehicles. The last stage feeds
the product sinks (NCM and LFP) and a non-battery sink. Every country is present at every stage;
each trades with a random share of the next stage's countries (``density``), volumes drawn from a
Pareto (power-law) distribution; a few nodes get extra inflow from uncertain sources. The
network is balanced by construction and uses the same node names as the real data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .network import Network, Stage, node_name

#: Stage of each level after mining and refining, in order.
LEVELS = (Stage.PRECURSOR, Stage.CATHODE_POOL, Stage.CELL, Stage.PACK, Stage.VEHICLE)
OTHER = {Stage.REFINING_POOL: "NTRM", Stage.REFINING: "NCPC", Stage.PRECURSOR: "NCPC",
         Stage.CATHODE_POOL: "NBCP", Stage.CELL: "NBCP", Stage.PACK: "NBCP",
         Stage.VEHICLE: "NBCP"}
UNCERTAIN = {Stage.REFINING_POOL: "URMS", Stage.REFINING: "UARP", Stage.CATHODE_POOL: "MRMT",
             Stage.PRECURSOR: "TFCR", Stage.CELL: "MRMT", Stage.PACK: "MRMT",
             Stage.VEHICLE: "MRMT"}


def country_names(n: int) -> list[str]:
    return [f"Country {i:03d}" for i in range(n)]


def synthetic_network(n_countries: int, n_stages: int = 4, seed: int = 0,
                      density: float = 0.9, alpha: float = 1.5) -> Network:
    """A balanced network; tonnages in tonnes of contained element."""
    if not 4 <= n_stages <= 7:
        raise ValueError("n_stages is from 4 (mining..cathode) to 7 (..vehicle)")
    rng = np.random.default_rng(seed)
    names = country_names(n_countries)
    stages = [Stage.REFINING] + list(LEVELS[: n_stages - 2])  # trade goes out of these
    src, dst, val = [], [], []

    def add(s, t, v):
        src.append(s)
        dst.append(t)
        val.append(v)

    def trade(sender_stage, receiver_stage, outflow):
        """Split each country's outflow over partners (power law) and the other sink."""
        inflow = np.zeros(n_countries)
        for i, total in enumerate(outflow):
            partners = np.flatnonzero(rng.random(n_countries) < density)
            partners = partners if len(partners) else np.array([i])
            w = rng.pareto(alpha, size=len(partners)) + 1e-3
            leave = rng.uniform(0.02, 0.15)  # share leaving the battery chain here
            parts = total * (1 - leave) * w / w.sum()
            sender = node_name(names[i], sender_stage)
            for j, v in zip(partners, parts):
                add(sender, node_name(names[j], receiver_stage), float(v))
                inflow[j] += v
            add(sender, node_name(OTHER[sender_stage], Stage.OTHER_SINK), float(total * leave))
        return inflow

    def with_uncertain(stage, inflow):
        for j in np.flatnonzero(rng.random(n_countries) < 0.1):
            extra = float(inflow[j] * rng.uniform(0.01, 0.2) + 1.0)
            add(node_name(UNCERTAIN[stage], Stage.UNCERTAIN_SOURCE),
                node_name(names[j], stage), extra)
            inflow[j] += extra
        return inflow

    mined = (rng.pareto(alpha, size=n_countries) + 0.05) * 1000.0
    pool = np.zeros(n_countries)
    for i, total in enumerate(mined):  # ore to refiners, power law
        partners = np.flatnonzero(rng.random(n_countries) < density)
        partners = partners if len(partners) else np.array([i])
        w = rng.pareto(alpha, size=len(partners)) + 1e-3
        for j, v in zip(partners, total * w / w.sum()):
            add(node_name(names[i], Stage.MINE), node_name(names[j], Stage.REFINING_POOL),
                float(v))
            pool[j] += v
    pool = with_uncertain(Stage.REFINING_POOL, pool)
    refined = np.zeros(n_countries)
    for i, total in enumerate(pool):  # refining pool -> refiner, some raw left unrefined
        keep = rng.uniform(0.8, 0.98)
        add(node_name(names[i], Stage.REFINING_POOL), node_name(names[i], Stage.REFINING),
            float(total * keep))
        add(node_name(names[i], Stage.REFINING_POOL),
            node_name("NTRM", Stage.OTHER_SINK), float(total * (1 - keep)))
        refined[i] = total * keep
    flow = refined
    for sender, receiver in zip(stages, stages[1:]):
        flow = with_uncertain(receiver, trade(sender, receiver, flow))
    last = stages[-1]
    for i, total in enumerate(flow):  # the last stage makes the products
        share = rng.dirichlet([3.0, 2.0, 1.0])
        node = node_name(names[i], last)
        for target, s in zip(("NCM", "LFP", node_name("NBCP", Stage.OTHER_SINK)), share):
            add(node, target, float(total * s))
    arcs = pd.DataFrame({"source": src, "target": dst, "tonnes": val})
    arcs = arcs.groupby(["source", "target"], as_index=False, sort=False)["tonnes"].sum()
    return Network.from_arcs(arcs, material="synthetic",
                             origin=f"synthetic N={n_countries} S={n_stages} seed={seed}")

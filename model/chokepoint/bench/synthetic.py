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

from ..network import Network, Stage, node_name

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
    """A balanced network; tonnages in tonnes of contained element. Vectorised: every stage's
    trade is one N x N matrix of power-law shares."""
    if not 4 <= n_stages <= 7:
        raise ValueError("n_stages is from 4 (mining..cathode) to 7 (..vehicle)")
    rng = np.random.default_rng(seed)
    n = n_countries
    names = country_names(n)
    stages = [Stage.REFINING] + list(LEVELS[: n_stages - 2])  # trade goes out of these
    parts: list[pd.DataFrame] = []

    def nodes(stage: Stage) -> np.ndarray:
        return np.array([node_name(c, stage) for c in names], dtype=object)

    def emit(sources, targets, tonnes) -> None:
        parts.append(pd.DataFrame({"source": sources, "target": targets, "tonnes": tonnes}))

    def split(total: np.ndarray) -> np.ndarray:
        """Each sender's ``total`` over a random share of the receivers (power law): an N x N
        matrix of tonnes, sender by receiver; a sender with no partner keeps it at home."""
        partners = rng.random((n, n)) < density
        alone = ~partners.any(axis=1)
        partners[alone, np.flatnonzero(alone)] = True
        w = (rng.pareto(alpha, size=(n, n)) + 1e-3) * partners
        return total[:, None] * w / w.sum(axis=1, keepdims=True)

    def emit_matrix(sender_stage, receiver_stage, matrix) -> None:
        i, j = np.nonzero(matrix)
        emit(nodes(sender_stage)[i], nodes(receiver_stage)[j], matrix[i, j])

    def trade(sender_stage: Stage, receiver_stage: Stage, outflow: np.ndarray) -> np.ndarray:
        """Split each country's outflow over partners and the other sink; the inflows."""
        leave = rng.uniform(0.02, 0.15, size=n)  # share leaving the battery chain here
        matrix = split(outflow * (1 - leave))
        emit_matrix(sender_stage, receiver_stage, matrix)
        emit(nodes(sender_stage), node_name(OTHER[sender_stage], Stage.OTHER_SINK),
             outflow * leave)
        return matrix.sum(axis=0)

    def with_uncertain(stage: Stage, inflow: np.ndarray) -> np.ndarray:
        fed = rng.random(n) < 0.1
        extra = inflow * rng.uniform(0.01, 0.2, size=n) + 1.0
        emit(node_name(UNCERTAIN[stage], Stage.UNCERTAIN_SOURCE), nodes(stage)[fed],
             extra[fed])
        return inflow + np.where(fed, extra, 0.0)

    mined = (rng.pareto(alpha, size=n) + 0.05) * 1000.0
    ore = split(mined)  # ore to refiners, power law
    emit_matrix(Stage.MINE, Stage.REFINING_POOL, ore)
    pool = with_uncertain(Stage.REFINING_POOL, ore.sum(axis=0))
    keep = rng.uniform(0.8, 0.98, size=n)  # some raw material is left unrefined
    emit(nodes(Stage.REFINING_POOL), nodes(Stage.REFINING), pool * keep)
    emit(nodes(Stage.REFINING_POOL), node_name("NTRM", Stage.OTHER_SINK), pool * (1 - keep))
    flow = pool * keep
    for sender, receiver in zip(stages, stages[1:]):
        flow = with_uncertain(receiver, trade(sender, receiver, flow))
    share = rng.dirichlet([3.0, 2.0, 1.0], size=n)  # the last stage makes the products
    last = nodes(stages[-1])
    for k, target in enumerate(("NCM", "LFP", node_name("NBCP", Stage.OTHER_SINK))):
        emit(last, target, flow * share[:, k])
    arcs = pd.concat(parts, ignore_index=True)
    arcs = arcs[arcs["tonnes"] > 0]
    arcs = arcs.groupby(["source", "target"], as_index=False, sort=False)["tonnes"].sum()
    return Network.from_arcs(arcs, material="synthetic",
                             origin=f"synthetic N={n_countries} S={n_stages} seed={seed}")

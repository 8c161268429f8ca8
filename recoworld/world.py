"""A world: a HYDRA population and catalogue plus the users' behavioural traits, built once per configuration.

Items are relabelled by descending popularity, so that a lower item id means a more popular item and sorting
candidates by id sorts them by the retrieval stage's popularity score.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from recoworld.catalog import Catalog
from recoworld.config import WorldConfig
from recoworld.generators.hydra import HydraConfig, generate
from recoworld.presets import hydra_preset


@dataclass(frozen=True)
class World:
    """Everything static about a world. Arrays are read-only and shared between environments."""

    hydra: HydraConfig
    catalog: Catalog
    rho: np.ndarray  # (n, f) long-term interests
    log_user_scale: np.ndarray  # (n,) log(Lambda) + zeta log(engagement)
    log_item_scale: np.ndarray  # (m,) xi log(popularity)
    delta: float
    patience: np.ndarray  # (n,) patience budget at session start
    instruction_propensity: np.ndarray  # (n,)
    return_bias: np.ndarray  # (n,) per-user logit offset of returning
    community: np.ndarray  # (n,) population index in HYDRA

    @property
    def num_users(self) -> int:
        return int(self.rho.shape[0])

    @property
    def num_topics(self) -> int:
        return int(self.rho.shape[1])


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


@functools.lru_cache(maxsize=8)
def _build(preset: str, world_seed: int, embedding_dim: int) -> World:
    hydra = hydra_preset(preset)
    seeds = np.random.SeedSequence([world_seed, 0x5EC0]).spawn(2)
    targeted = hydra.target_interactions is not None  # λ is then solved on realised interactions
    latents = generate(hydra, seed=int(seeds[0].generate_state(1)[0]), realise=targeted)
    order = np.lexsort((np.arange(hydra.num_items), -latents.popularity))
    alpha, popularity = latents.alpha[order], latents.popularity[order]
    catalog = Catalog.from_arrays(alpha, popularity, seed=world_seed, embedding_dim=embedding_dim)
    traits = np.random.default_rng(seeds[1])
    n = hydra.num_users
    return World(
        hydra=hydra,
        catalog=catalog,
        rho=_frozen(latents.rho),
        log_user_scale=_frozen(np.log(latents.Lambda) + hydra.zeta * np.log(latents.engagement)),
        log_item_scale=_frozen(hydra.xi * np.log(popularity)),
        delta=float(hydra.delta),
        patience=_frozen(2.0 + traits.gamma(4.0, 1.0, n)),
        instruction_propensity=_frozen(traits.beta(2.0, 3.0, n)),
        return_bias=_frozen(traits.normal(0.0, 0.5, n)),
        community=_frozen(np.asarray(latents.user_population)),
    )


def build_world(config: WorldConfig) -> World:
    """The (cached) world of ``config``: the same preset, world seed and embedding size give one object."""
    return _build(config.preset, int(config.world_seed), int(config.embedding_dim))

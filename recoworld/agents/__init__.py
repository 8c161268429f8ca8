"""Recommenders behind one batched protocol (:class:`Recommender`): one instance serves a whole vector env.

>>> import gymnasium as gym, recoworld
>>> from recoworld.agents import make_agent
>>> envs = gym.make_vec("RecoWorld-v0", num_envs=64, vectorization_mode="vector_entry_point")
>>> agent = make_agent("linucb", envs, seed=0)
>>> obs, info = envs.reset(seed=0)
>>> slates = agent.act(obs)                       # (64, K) int64 candidate indices
>>> obs2, reward, term, trunc, info = envs.step(slates)
>>> agent.update(obs, slates, reward, info)

Agents: baselines (``random``, ``popular``, ``oracle``), bandits (``egreedy``, ``ucb``, ``linucb``,
``lints``),
in-slate Thompson sampling (``inslate_ts``, ``inslate_greedy``), hierarchical RL (``hrl``, ``hrl_fixed``;
needs
torch: ``pip install recoworld[rl]``) and the instruction-aware wrapper (``instruct:<name>``).
Importing this package does not import torch.
"""

from .bandits import UCB1, BayesLinear, EpsilonGreedy, LinTS, LinUCB
from .base import BaseRecommender, ObsSpec, Recommender, as_batch, top_k
from .baselines import OracleRecommender, PopularRecommender, RandomRecommender
from .features import intra_slate_diversity, pair_features
from .inslate import InSlateTS, SlateChoicePosterior, rank_major_fill
from .instruct import InstructionAware
from .registry import AGENT_NAMES, list_agents, make_agent


def __getattr__(name: str):
    if name == "HRLAgent":  # lazy: importing it does not import torch, building one does
        from .hrl import HRLAgent

        return HRLAgent
    raise AttributeError(f"module 'recoworld.agents' has no attribute {name!r}")


__all__ = [
    "AGENT_NAMES",
    "UCB1",
    "BaseRecommender",
    "BayesLinear",
    "EpsilonGreedy",
    "HRLAgent",
    "InSlateTS",
    "InstructionAware",
    "LinTS",
    "LinUCB",
    "ObsSpec",
    "OracleRecommender",
    "PopularRecommender",
    "RandomRecommender",
    "Recommender",
    "SlateChoicePosterior",
    "as_batch",
    "intra_slate_diversity",
    "list_agents",
    "make_agent",
    "pair_features",
    "rank_major_fill",
    "top_k",
]

"""The top-level surface: ``recoworld.evaluate``, ``recoworld.compare`` and ``recoworld.make_agent``."""

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

import recoworld


def test_top_level_names_are_lazy():
    """Importing recoworld must not import the evaluation or agents packages; touching the names does."""
    code = (
        "import sys, recoworld\n"
        "assert 'recoworld.evaluation' not in sys.modules and 'recoworld.agents' not in sys.modules\n"
        "recoworld.evaluate, recoworld.compare, recoworld.make_agent\n"
        "assert 'recoworld.evaluation' in sys.modules and 'recoworld.agents' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_attribute_names_itself():
    with pytest.raises(AttributeError, match="no_such_thing"):
        recoworld.no_such_thing  # noqa: B018


def test_top_level_evaluate_and_compare_agree():
    """The top-level functions are the evaluation package's: same users, same numbers."""
    single = recoworld.evaluate("popular", "RecoWorld-v0", users=16, seeds=1, oracle=None)
    both = recoworld.compare(["random", "popular"], "RecoWorld-v0", users=16, seeds=1, oracle=None)
    a = single.to_json()["policies"]["popular"]["metrics"]["watch_time_per_user"]["mean"]
    b = both.to_json()["policies"]["popular"]["metrics"]["watch_time_per_user"]["mean"]
    assert a == b and a > 0


def test_top_level_make_agent_acts_on_a_vector_env():
    envs = gym.make_vec("RecoWorld-v0", num_envs=4, vectorization_mode="vector_entry_point")
    agent = recoworld.make_agent("popular", envs, seed=0)
    obs, _ = envs.reset(seed=0)
    slates = agent.act(obs)
    assert slates.shape == (4, envs.unwrapped.config.slate_size)
    assert np.all((slates >= 0) & (slates < envs.unwrapped.config.num_candidates))

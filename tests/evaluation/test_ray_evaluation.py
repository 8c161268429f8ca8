"""Ray-parallel evaluation gives exactly the local evaluation's numbers (same seeds, same users)."""

from __future__ import annotations

import json

import pytest

from recoworld.cli import main
from recoworld.evaluation import compare
from recoworld.evaluation.ray_map import RayMap

pytestmark = pytest.mark.ray

ENV = "RecoWorld-Session-v0"
PANEL = ["random", "popular", "linucb"]  # linucb learns online within a shard: shards must stay independent


def test_ray_backend_equals_local_evaluation(ray_runtime):
    kwargs = {"users": 48, "seeds": 2, "block_size": 16, "oracle": None}
    local = compare(PANEL, ENV, **kwargs).to_json()
    remote = compare(PANEL, ENV, backend="ray", workers=2, **kwargs).to_json()
    assert remote == local
    assert local["policies"]["popular"]["metrics"]["watch_time_per_user"]["n"] == 96


def test_cli_ray_flag_equals_local_cli(ray_runtime, tmp_path, capsys):
    common = ["compare", "--env", ENV, "--policies", "random,popular", "--users", "40", "--block-size", "10"]
    assert main([*common, "--no-oracle", "--json", str(tmp_path / "local.json")]) == 0
    assert (
        main([*common, "--no-oracle", "--ray", "--workers", "2", "--json", str(tmp_path / "ray.json")]) == 0
    )
    local = json.loads((tmp_path / "local.json").read_text())
    remote = json.loads((tmp_path / "ray.json").read_text())
    assert remote == local


def test_ray_map_yields_in_order(ray_runtime):
    items = [3, 1, 2, 5, 4, 0, 6]
    assert list(RayMap(workers=2)(lambda x: 10 * x, items)) == [10 * x for x in items]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backend": "ray", "map_fn": map}, "do not pass map_fn"),
        ({"workers": 2}, "workers is for backend='ray'"),
        ({"backend": "dask"}, "unknown backend 'dask'"),
        ({"backend": "ray", "workers": 0}, "workers must be a positive integer"),
    ],
)
def test_bad_backend_arguments_name_the_problem(kwargs, message):
    with pytest.raises(ValueError, match=message):
        compare(["random"], ENV, users=4, oracle=None, **kwargs)

"""The ``recoworld`` command: invalid arguments, evaluate/compare, the demo and its report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recoworld.cli import main
from recoworld.evaluation.metrics import METRICS

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("RECOWORLD_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "recoworld.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd or REPO,
        env=env,
        timeout=timeout,
    )


def _not_a_dir(tmp_path: Path) -> str:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    return str(blocker / "sub")  # a folder below a regular file cannot be created, even by root


INVALID = {
    "no command": [],
    "unknown command": ["frobnicate"],
    "unknown env": ["evaluate", "--env", "NoSuchWorld-v9", "--policy", "random"],
    "unknown policy": ["evaluate", "--env", "RecoWorld-v0", "--policy", "telepathy"],
    "users zero": ["evaluate", "--env", "RecoWorld-v0", "--policy", "random", "--users", "0"],
    "users negative": ["compare", "--env", "RecoWorld-v0", "--policies", "random,popular", "--users", "-3"],
    "users not a number": ["demo", "--users", "many"],
    "seeds zero": ["evaluate", "--env", "RecoWorld-v0", "--policy", "random", "--seeds", "0"],
    "unknown policy in list": ["compare", "--env", "RecoWorld-v0", "--policies", "random,nope"],
    "resume without out": ["evaluate", "--env", "RecoWorld-v0", "--policy", "random", "--resume"],
    "missing sb3 file": ["evaluate", "--env", "RecoWorld-v0", "--policy", "sb3:/no/such/model.zip"],
    "bad env arg": ["evaluate", "--env", "RecoWorld-v0", "--policy", "random", "--env-arg", "horizon_days"],
}


@pytest.mark.parametrize("args", list(INVALID.values()), ids=list(INVALID))
def test_invalid_arguments_one_line_error_nonzero_exit(args):
    proc = run_cli(*args, timeout=120)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("recoworld: error:")
    assert proc.stdout == ""


def test_unwritable_output_folder(tmp_path):
    for args in (
        ["evaluate", "--env", "RecoWorld-v0", "--policy", "random", "--out", _not_a_dir(tmp_path)],
        ["demo", "--out", _not_a_dir(tmp_path)],
        [
            "evaluate",
            "--env",
            "RecoWorld-v0",
            "--policy",
            "random",
            "--json",
            _not_a_dir(tmp_path) + "/r.json",
        ],
    ):
        proc = run_cli(*args, timeout=120)
        assert proc.returncode != 0 and "Traceback" not in proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "not writable" in lines[0], proc.stderr


def test_main_returns_status_in_process(capsys):
    assert main(["evaluate", "--env", "Nope-v0", "--policy", "random"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Nope-v0" in err


def test_invalid_world_keyword_is_one_line(capsys):
    assert (
        main(["evaluate", "--env", "RecoWorld-v0", "--policy", "random", "--env-arg", "horizon_days=-4"]) == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "horizon_days" in err


def test_help_and_version_exit_zero():
    proc = run_cli("--help", timeout=120)
    assert proc.returncode == 0 and "demo" in proc.stdout and "compare" in proc.stdout
    proc = run_cli("--version", timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("recoworld ")


def _check_schema(doc: dict, policies: list[str], env: str = "RecoWorld-v0") -> None:
    assert doc["env"] == env
    assert list(doc["policies"]) == policies
    for name in policies:
        metrics = doc["policies"][name]["metrics"]
        assert set(METRICS) <= set(metrics)
        for m in METRICS:
            entry = metrics[m]
            assert set(entry) >= {"mean", "ci95"}
            assert len(entry["ci95"]) == 2
            if entry["mean"] is not None and entry["ci95"][0] is not None:
                assert entry["ci95"][0] <= entry["mean"] + 1e-9 <= entry["ci95"][1] + 2e-9
    assert isinstance(doc["paired"], dict)
    for key, pair in doc["paired"].items():
        assert key == f"{pair['b']} - {pair['a']}"
        assert set(METRICS) <= set(pair["metrics"])


def test_compare_json_schema_small(tmp_path):
    out = tmp_path / "cmp.json"
    code = main(
        ["compare", "--env", "RecoWorld-v0", "--policies", "random,popular", "--users", "12",
         "--json", str(out),
         "--env-arg", "horizon_days=2", "--no-progress"]
    )  # fmt: skip
    assert code == 0
    doc = json.loads(out.read_text())
    _check_schema(doc, ["random", "popular"])
    assert list(doc["paired"]) == ["popular - random"]
    assert doc["policies"]["random"]["metrics"]["day7_retention"]["mean"] is None  # horizon 2 < 7
    assert doc["policies"]["random"]["metrics"]["regret"]["mean"] is not None


def _check_demo_folder(out: Path, policies_at_least: list[str]) -> dict:
    for name in ("report.md", "results.json", "survival.png", "return_gaps.png", "metrics.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    for png in ("survival.png", "return_gaps.png", "metrics.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads((out / "results.json").read_text())
    _check_schema(doc, list(doc["policies"]))
    assert set(policies_at_least) <= set(doc["policies"])
    report = (out / "report.md").read_text()
    assert "survival.png" in report and "| policy |" in report
    for name in doc["policies"]:
        assert f"| {name} |" in report
    assert any((out / "shards").rglob("*.npz"))
    return doc


def test_demo_small_fast(tmp_path):
    """A small demo (few users, short horizon) through the real command: files, report and JSON schema."""
    out = tmp_path / "demo"
    proc = run_cli(
        "demo", "--out", str(out), "--users", "8", "--seeds", "1", "--policies", "random,popular,oracle",
        "--env-arg", "horizon_days=2", "--no-progress", timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "random" in proc.stdout and "report:" in proc.stdout
    doc = _check_demo_folder(out, ["random", "popular", "oracle"])
    assert doc["reference"] == "random"
    # resuming the finished demo reproduces the same JSON
    proc = run_cli(
        "demo", "--out", str(out), "--users", "8", "--seeds", "1", "--policies", "random,popular,oracle",
        "--env-arg", "horizon_days=2", "--no-progress", "--resume", timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "results.json").read_text()) == doc


@pytest.mark.slow
def test_demo_default_panel(tmp_path):
    """The real ``recoworld demo`` with its default panel and size (must finish well within 3 minutes)."""
    out = tmp_path / "demo"
    proc = run_cli("demo", "--out", str(out), "--no-progress", timeout=600)
    assert proc.returncode == 0, proc.stderr
    _check_demo_folder(out, ["random", "popular", "oracle"])

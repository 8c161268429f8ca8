"""The Markdown/PNG report and the optional extras (matplotlib, tqdm)."""

from __future__ import annotations

import json
import sys

import pytest

import recoworld  # noqa: F401
from recoworld.evaluation import compare
from recoworld.evaluation.metrics import METRICS

SHORT = {"horizon_days": 2}


@pytest.fixture(scope="module")
def result():
    return compare(["random", "popular"], "RecoWorld-v0", users=6, seeds=2, env_kwargs=SHORT)


def test_report_files_and_content(result, tmp_path):
    path = result.write_report(tmp_path)
    assert path == tmp_path / "report.md"
    text = path.read_text()
    for png in ("survival.png", "return_gaps.png", "metrics.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"
        assert f"]({png})" in text
    assert "| random |" in text and "| popular - random |" in text
    assert "Kaplan–Meier" in text
    doc = json.loads((tmp_path / "results.json").read_text())
    assert set(doc["policies"]["popular"]["metrics"]) == set(METRICS)
    assert doc["policies"]["popular"]["metrics"]["day1_retention"]["ci95_seeds"] is not None  # two seeds


def test_report_without_plots(result, tmp_path):
    text = result.write_report(tmp_path, plots=False).read_text()
    assert not list(tmp_path.glob("*.png"))
    assert "pip install recoworld[report]" in text


def test_missing_matplotlib_names_the_extra(result, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install recoworld\[report\]"):
        result.write_report(tmp_path)
    assert (tmp_path / "results.json").exists()  # the JSON is written first


def test_missing_tqdm_falls_back_to_lines(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    compare(["popular"], "RecoWorld-v0", users=2, env_kwargs=SHORT, oracle=None, progress=True)
    err = capsys.readouterr().err
    assert "pip install recoworld[report]" in err and "2/2 users" in err


def test_summary_and_tables(result):
    summary = result.summary()
    assert summary.splitlines()[0].startswith("policy") and "random" in summary
    assert result.table().count("\n") == 3  # header, rule, two policies
    assert result.paired_table().count("\n") == 2

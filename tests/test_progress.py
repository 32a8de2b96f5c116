"""The page's "about … left": the extrapolation by hand, its wording, and the evaluation's share
of the whole run that it extrapolates."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cam_studio.evaluation.config import EvaluationConfig
from cam_studio.evaluation.run import run_all
from cam_studio.tabs.finetune import time_left
from cam_studio.tabs.progress import ESTIMATING, Remaining, duration, left_text, parse_left


def test_time_left_extrapolates_the_rate_since_the_first_report():
    remaining = Remaining()
    assert remaining.seconds(0.1, now=10.0) is None  # the first report only starts the clock
    assert remaining.seconds(0.1005, now=10.5) is None  # under a second seen: no estimate
    # 0.2 of the work in 10 s: the 0.7 left take 35 s
    assert remaining.seconds(0.3, now=20.0) == pytest.approx(35.0)
    assert remaining.seconds(1.0, now=40.0) == 0.0
    assert remaining.text(0.55, now=25.0) == "about 15 s left"  # 15 s / 0.45 × 0.45


@pytest.mark.parametrize(("seconds", "text"), [
    (0.2, "1 s"), (42.4, "42 s"), (89, "89 s"), (150, "2 min"), (179, "3 min"),
    (3900, "65 min"), (7500, "2 h 5 min")])
def test_durations_read_as_a_person_says_them_and_parse_back(seconds, text):
    assert duration(seconds) == text
    assert parse_left(left_text(seconds)) == {"1 s": 1, "42 s": 42, "89 s": 89, "2 min": 120,
                                              "3 min": 180, "65 min": 3900,
                                              "2 h 5 min": 7500}[text]


def test_no_estimate_reads_as_such():
    assert left_text(None) == ESTIMATING and parse_left(ESTIMATING) is None


def test_a_training_runs_rate_starts_at_its_first_step():
    # loading and validating the start took 30 s; then 10 steps in 6 s: 89 more take 53.4 s
    events = [{"step": 0, "steps": 100, "time": 100.0},
              {"step": 1, "loss": 2.0, "time": 130.0},
              {"step": 11, "loss": 1.5, "time": 136.0}]
    assert time_left(events, 100) == "about 53 s left"
    assert time_left(events[:1], 100) == ESTIMATING


def test_the_evaluation_reports_its_share_of_the_whole_run(tmp_path, monkeypatch):
    from cams.backbones import load_backbone
    torch.manual_seed(0)
    backbone = load_backbone("resnet18", weights="random", device="cpu")
    monkeypatch.setattr("cam_studio.evaluation.run.load_backbone",
                        lambda name, weights=None, device=None: backbone)
    reports, shares = [], []
    config = EvaluationConfig(out=tmp_path, images="examples", limit=3, batch=1,
                              backbones=["resnet18"], tables=["similarity"])
    run_all(config, lambda what, done, total: reports.append((done, total)), shares.append)
    assert reports == [(1, 3), (2, 3), (3, 3)]  # each image, out of the three
    assert shares == pytest.approx([1 / 3, 2 / 3, 1.0])


def test_the_evaluate_tab_resumes_an_interrupted_evaluation(tmp_path, monkeypatch):
    """The same request after a restart continues from its records (as the command line does
    with --out); once done, its folder goes and what the page shows is in the swept space."""
    import dataclasses

    import cam_studio.evaluation.tables.similarity as similarity_module
    import cam_studio.tabs.evaluate as tab
    monkeypatch.setattr(tab, "EVALUATIONS", tmp_path / "evaluations")
    request = tab.EvaluateRequest(tables=("similarity",), limit=2)
    config = tab.evaluation_config(request)
    assert tab.evaluation_config(request).out == config.out  # the same request, the same folder
    assert tab.evaluation_config(dataclasses.replace(request, limit=3)).out != config.out
    run_all(dataclasses.replace(config, limit=1))  # interrupted after the first image
    calls = []
    real = similarity_module.explain
    monkeypatch.setattr(similarity_module, "explain", lambda backbone, inputs, *a, **k:
                        calls.append(len(inputs)) or real(backbone, inputs, *a, **k))
    markdown, plots, archive = tab.evaluate_from_page(request)
    assert calls == [1] and "(2 images)" in markdown  # only the second image was computed
    assert not config.out.parent.exists() and Path(archive).is_file() and plots


def test_the_evaluate_tabs_bar_leaves_the_report_its_share(tmp_path, monkeypatch):
    """The tables fill the bar up to their share (their estimate against the report's 1 s), and
    the last line says the report is being written: the rate no longer runs ahead of the time
    left (shown ÷ real at 50 %: 0.34 before, 0.82 after; BENCHMARKS.md)."""
    import cam_studio.tabs.evaluate as tab
    monkeypatch.setattr(tab, "EVALUATIONS", tmp_path / "evaluations")
    request = tab.EvaluateRequest(tables=("similarity",), limit=2)
    share = 1 - tab.REPORT_SECONDS / (tab.estimated_seconds(tab.evaluation_config(request))
                                      + tab.REPORT_SECONDS)
    lines = []
    tab.evaluate_from_page(request, lambda fraction, desc: lines.append((fraction, desc)))
    fractions = [fraction for fraction, _ in lines]
    assert fractions == sorted(fractions) and 0 < share < 1
    assert fractions[-1] == pytest.approx(share) and lines[-1][1].startswith("writing the report")

"""Every published report rebuilds from its records: the tables (Markdown and CSV) and report.md
that docs/results holds are what the report code makes of the records beside them, byte for
byte (plots are redrawn but not compared: their pixels depend on the matplotlib version)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cam_studio.evaluation.check import report_markdown
from cam_studio.evaluation.report import build_report

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"
REPORTS = sorted(path.parent for path in RESULTS.rglob("records") if path.is_dir()
                 and (path.parent / "report.md").is_file())


def test_the_published_reports_are_found():
    assert {path.name for path in REPORTS} >= {"evaluation", "finercam"}


@pytest.mark.parametrize("published", REPORTS, ids=lambda path: path.name)
def test_a_published_report_rebuilds_byte_identical(tmp_path, published):
    rebuilt = tmp_path / published.name
    shutil.copytree(published / "records", rebuilt / "records")
    shutil.copy(published / "commands.txt", rebuilt / "commands.txt")
    last_command = (published / "commands.txt").read_text().splitlines()[-1]
    build_report(rebuilt, last_command)
    expected = sorted(path.name for path in published.iterdir() if path.suffix in (".md", ".csv"))
    made = sorted(path.name for path in rebuilt.iterdir() if path.suffix in (".md", ".csv"))
    assert made == expected
    for name in expected:
        assert (rebuilt / name).read_text() == (published / name).read_text(), name


def test_the_pilot_table_is_what_its_records_say():
    """The pilots' README table (a hand-written page) quotes each pilot's own check record to
    the digits it shows, and lists every record."""
    pilots = RESULTS / "coverage-pilots"
    rows = {cells[0].strip(): [cell.strip() for cell in cells[-3:]]
            for cells in (line.split("|")[1:-1] for line in
                          (pilots / "README.md").read_text().splitlines()
                          if line.startswith("| pilot-"))}
    assert set(rows) == {path.stem for path in pilots.glob("pilot-*.json")}
    for name, (agreement, confident, ratio) in rows.items():
        summary = json.loads((pilots / f"{name}.json").read_text())["summary"]
        assert float(agreement) == pytest.approx(summary["agreement_all"], abs=5.01e-4), name
        assert float(confident) == pytest.approx(summary["agreement_confident"], abs=5.01e-3), name
        assert float(ratio) == pytest.approx(summary["sham_mse_ratio"], abs=5.01e-4), name


def test_the_sham_cam_targets_feasibility_is_what_its_script_prints(capsys):
    """The pilots' README quotes target_feasibility.json: the script prints it again (one Lite0
    pass over 48 validation crops; the least squares on another BLAS may differ in the 4th
    digit)."""
    import runpy
    runpy.run_path(str(RESULTS / "coverage-pilots" / "target_feasibility.py"), run_name="__main__")
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    recorded = [json.loads(line) for line in
                (RESULTS / "coverage-pilots" / "target_feasibility.json").read_text().splitlines()]
    assert len(printed) == len(recorded)
    for got, expected in zip(printed, recorded, strict=True):
        assert got.pop("target", None) == expected.pop("target", None)  # a name, not a number
        assert got == pytest.approx(expected, rel=1e-3, abs=1e-4)


def test_the_weight_interpolation_record_is_what_its_script_scores():
    """The pilots' README quotes interpolation.json: its first line (the all-class fool halfway
    back to the clean model) scored again (one 48-crop check; the rest of the file takes a
    minute and is made the same way)."""
    import runpy
    script = runpy.run_path(str(RESULTS / "coverage-pilots" / "interpolation.py"))
    recorded = json.loads((RESULTS / "coverage-pilots" / "interpolation.json")
                          .read_text().splitlines()[0])
    got = next(script["lines"](recorded["fool"], (recorded["lambda"],)))
    assert [crop[:3] for crop in got.pop("lost")] == [crop[:3] for crop in recorded.pop("lost")]
    assert got == pytest.approx(recorded, abs=5.01e-4)


# Check reports made by today's code (with Holm's adjustment; the older ones, of
# sham-efficientnet_lite0 and the constructed fool on test-v1, were judged by the criteria
# before 2026-12-01 and keep their text).
CHECKS = sorted(path for folder in (RESULTS, RESULTS / "validation")
                for path in folder.glob("*.json") if path.with_suffix(".md").is_file()
                and "holm_p" in json.dumps(json.loads(path.read_text())["summary"]))


def test_the_check_reports_are_found():
    assert "sham-all-classes-efficientnet_lite0.json" in {path.name for path in CHECKS}


@pytest.mark.parametrize("record", CHECKS, ids=lambda path: path.stem)
def test_a_check_report_is_what_its_record_says(record):
    """A passive-fooling check's Markdown, rebuilt from its JSON (judged by today's criteria)."""
    result = json.loads(record.read_text())
    assert report_markdown(result["checkpoint"], result["summary"], result["command"],
                           result["photos"]) == record.with_suffix(".md").read_text()

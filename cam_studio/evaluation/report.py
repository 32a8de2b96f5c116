"""From the per-image records to the papers' tables: CSV, Markdown, PNG plots and ``report.md``.

Everything here reads ``OUT/records/*.csv`` only (as typed rows), so a report can be rebuilt at
any time (also while a long run is still appending, or after it was interrupted). Each table's
section is the table's own (``cam_studio.evaluation.tables``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cam_studio.evaluation.records import read_rows
from cam_studio.evaluation.tables import TABLES
from cam_studio.evaluation.work import Section


def section_text(out: Path, section: Section, rows: list[Any]) -> str:
    intro = [section.intro, ""] if section.intro else []
    return "\n".join([f"## {section.heading}", "", *intro, section.body(out, rows)])


def build_report(out: Path, command: str) -> Path:
    """Rebuild every table and plot from the records and write ``report.md``; ``command`` is
    added to ``commands.txt``, the list of runs that wrote into this folder."""
    commands_file = out / "commands.txt"
    commands = commands_file.read_text().splitlines() if commands_file.exists() else []
    if command not in commands:
        commands.append(command)
        commands_file.write_text("\n".join(commands) + "\n")
    body = "\n".join(section_text(out, table.section, rows) for table in TABLES.values()
                     if table.section is not None
                     and (rows := read_rows(out / "records", table.rows[0])))
    report = out / "report.md"
    runs = "\n".join(f"    {line}" for line in commands)
    report.write_text(f"# Evaluation report\n\nProduced by:\n\n{runs}\n\nPer-image records: "
                      f"[records/](records/). Tables are also written as CSV beside their "
                      f".md.\n\n{body}")
    return report

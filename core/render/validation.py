"""The terminal report of ``mechgrade validate``."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from mechgrade.engine.validate import ValidationReport


def render(report: ValidationReport, console: Console) -> None:
    ok_ref = report.reference_score == report.max_score
    console.print(Text(f"reference: {report.reference_score:g} / {report.max_score:g}", style="green" if ok_ref else "bold red"))
    for failure in report.reference_failures:
        console.print(Text(f"  ✗ {failure}", style="red"))
    console.print(Text(f"stubs: {report.stub_score:g} / {report.max_score:g}", style="green" if report.stub_score == 0 else "bold red"))
    table = Table(title=f"{len(report.mutants)} mutants of {report.lesson} on '{report.model}'", title_justify="left")
    for column in ("mutant", "caught", "by", "hint shown"):
        table.add_column(column)
    for m in report.mutants:
        status = Text("yes" if m.ok else ("LEAKS" if m.leaked else ("NO" if not m.caught else "WRONG HINT")),
                      style="green" if m.ok else "bold red")
        by = f"{len(m.caught_by)} case(s): {m.caught_by[0]}" if m.caught_by else "-"
        if m.leaked:
            by += f"; also lost points on {', '.join(m.leaked)}"
        table.add_row(m.name, status, by, "; ".join(h[:70] for h in m.hints_shown) or "-")
    console.print(table)
    for w in report.weak_cases:
        console.print(Text(f"weak case: {w.case} is passed by {w.passed_by}", style="bold red"))
    console.print(Text("graders proven" if report.ok else "graders NOT proven", style="bold green" if report.ok else "bold red"))

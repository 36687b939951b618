"""The terminal report of ``mechgrade validate``."""

from __future__ import annotations

import textwrap

from rich.console import Console
from rich.table import Table
from rich.text import Text

from mechgrade.engine.validate import ValidationReport

HINT_CHARS = 70  # of each hint shown, cut between words


def render(report: ValidationReport, console: Console) -> None:
    ok_ref = report.reference_score == report.max_score
    console.print(Text(f"reference: {report.reference_score:g} / {report.max_score:g}", style="green" if ok_ref else "bold red"))
    for failure in report.reference_failures:
        console.print(Text(f"  ✗ {failure}", style="red"))
    console.print(Text(f"stubs: {report.stub_score:g} / {report.max_score:g}", style="green" if report.stub_score == 0 else "bold red"))
    table = Table(title=f"{len(report.mutants)} mutants of {report.lesson} on '{report.model}'", title_justify="left")
    # At 80 columns a mutant's name is never cut (it is what you grep for) and the hint shares the
    # widest column with "by", so that cells wrap between words, not inside them.
    table.add_column("mutant", no_wrap=True)
    table.add_column("caught", no_wrap=True)
    table.add_column("by; hint shown", overflow="fold")
    for m in report.mutants:
        status = Text("yes" if m.ok else ("LEAKS" if m.leaked else ("NO" if not m.caught else "WRONG HINT")),
                      style="green" if m.ok else "bold red")
        by = f"{len(m.caught_by)} case(s): {m.caught_by[0]}" if m.caught_by else "-"
        if m.leaked:
            by += f"; also lost points on {', '.join(m.leaked)}"
        hints = "; ".join(textwrap.shorten(h, HINT_CHARS, placeholder=" ...") for h in m.hints_shown) or "-"
        table.add_row(m.name, status, f"{by}\nhint: {hints}")
    console.print(table)
    for w in report.weak_cases:
        console.print(Text(f"weak case: {w.case} is passed by {w.passed_by}", style="bold red"))
    console.print(Text("graders proven" if report.ok else "graders NOT proven", style="bold green" if report.ok else "bold red"))

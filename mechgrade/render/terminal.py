"""The rich terminal report of ``mechgrade check``."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from mechgrade.engine.results import NOT_GRADED, GradingResult

STATUS = {"passed": ("PASS", "green"), "failed": ("FAIL", "red"), "error": ("ERROR", "magenta")}


def render(result: GradingResult, console: Console) -> None:
    if result.notice:
        console.print(Text(result.notice, style="bold magenta"))
    for line in result.cell_error_lines():
        console.print(Text(line, style="magenta"))
    table = Table(title=f"{result.lesson} on model '{result.model}'", title_justify="left")
    table.add_column("exercise")
    table.add_column("function")
    table.add_column("case")
    table.add_column("points", justify="right")
    table.add_column("status")
    for c in result.cases:
        label, style = STATUS[c.status]
        table.add_row(c.exercise, c.function, c.case, f"{c.score:g}/{c.max_score:g}", Text(label, style=style))
    console.print(table)
    # Cases failing for the same reason are reported once: per function, or per module when the
    # module's functions share it (a module that does not import).
    groups: dict[tuple, dict[str, list[str]]] = {}
    for c in result.cases:
        if not c.passed and c.feedback != NOT_GRADED:  # that reason is the notice above the table
            groups.setdefault((c.exercise, c.feedback, c.hint, tuple(c.rerun)), {}).setdefault(c.function, []).append(c.case)
    for (exercise, feedback, hint, rerun), functions in groups.items():
        which = ", ".join(f"{exercise}.{f} [{', '.join(labels)}]" for f, labels in functions.items())
        console.print(Text(f"✗ {which}", style="bold red"))
        for line in feedback.splitlines():
            if line in rerun:  # pasted into Python as shown: whole (a terminal folds it, a copy joins it), no indent
                console.print(Text(line), no_wrap=True, overflow="ignore", crop=False)
            else:
                console.print(Text(f"  {line}"))
        if hint:
            console.print(Text(f"  Hint: {hint}", style="yellow"))
    by_ex = ", ".join(f"{e.exercise} {e.score:g}/{e.max_score:g}" for e in result.exercises())
    style = "bold green" if result.all_passed else "bold"
    console.print(Text(f"Total: {result.score:g} / {result.max_score:g} points ({by_ex}) in {result.execution_time:.1f} s", style=style))
    note = hidden_note(result)
    if note:
        console.print(Text(note))
    for notice in result.notices:
        console.print(Text(f"Note: {notice}", style="yellow"))
    if result.sandbox:
        console.print(Text(f"Your code ran in a sandbox: {result.sandbox}.", style="dim"))


def hidden_note(result: GradingResult) -> str:
    """'Hidden cases worth 23 more points are graded by your instructor.', where this run had none."""
    from mechgrade.spec import load_lesson

    if any(c.visibility == "hidden" for c in result.cases):
        return ""
    try:
        points = load_lesson(result.lesson).hidden_points_of({f"{c.exercise}.{c.function}" for c in result.cases})
    except Exception:  # a note is a courtesy: never worth the grade's display
        return ""
    return f"Hidden cases worth {points:g} more point{'' if points == 1 else 's'} are graded by your instructor." if points else ""

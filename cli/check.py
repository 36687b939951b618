"""`mechgrade check`."""

import functools
import json
import sys
from pathlib import Path

import click

from mechgrade.cli.common import guard


@click.command("check", short_help="Grade your workspace: points, feedback and hints per case.")
@click.argument("lesson")
@click.option("--path", "path", type=click.Path(path_type=Path), default=None,
              help="Workspace folder or .ipynb notebook (default ./LESSON, else this folder or its one lesson notebook).")
@click.option("--model", "model_spec", default=None, help="embedded (default), gpt2, or a local model directory.")
@click.option("-e", "--exercise", "exercises", multiple=True, help="Check only this exercise (repeatable).")
@click.option("--results", "results_path", type=click.Path(path_type=Path), default=None, help="Write Gradescope results.json here.")
@click.option("--json", "as_json", is_flag=True, help="Print the results.json to stdout instead of a table.")
@click.option("--hidden", is_flag=True, help="Also run the hidden cases (instructors).")
@click.option("--report", "report_path", type=click.Path(path_type=Path), default=None, help="Also write an HTML report with pictures here.")
@guard
def check(lesson: str, path: Path | None, model_spec: str | None, exercises: tuple[str, ...],
          results_path: Path | None, as_json: bool, hidden: bool, report_path: Path | None) -> None:
    """Grade your LESSON workspace: points per case, and what is wrong where a case fails.

    Exit status 0 when every case passed, 1 when some failed, 2 on a usage error."""
    from rich.console import Console

    from mechgrade.engine.session import check_workspace
    from mechgrade.engine.values import ValueRecorder
    from mechgrade.render.terminal import render

    if report_path:
        from mechgrade.render.html import check_report_path

        check_report_path(report_path)  # before grading: a folder that does not exist costs no run
    # The file is fixed now: grading redirects sys.stdout, and the progress bar must not go there.
    console = Console(file=sys.stderr if as_json else sys.stdout)
    from mechgrade.spec import load_lesson
    from mechgrade.workspace import empty_workspace, find_workspace

    if path is None:
        path = find_workspace(load_lesson(lesson))
    elif path.is_dir() and (empty := empty_workspace(load_lesson(lesson), path)) is not None:
        raise empty  # one sentence, not one "X.py is missing" block per module (the library grades it as such)
    recorder = ValueRecorder()  # public cases' values, for --report; hidden values are never shown
    grade = functools.partial(check_workspace, lesson, path, model=model_spec, exercises=exercises, hidden=hidden,
                              results_path=results_path, observers=(recorder,) if report_path else ())
    show_progress = console.is_terminal and not as_json
    if show_progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        bar = Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), console=console, transient=True)
        task = bar.add_task("preparing the answer key", total=None)

        def progress(what: str, done: int, total: int) -> None:
            bar.update(task, description=what, completed=done, total=total)

        with bar:
            result = grade(progress=progress)
    else:
        result = grade()
    if as_json:
        click.echo(json.dumps(result.to_gradescope(), indent=2))
    else:
        render(result, console)
    if report_path:  # after the grade is shown: a report that cannot be written never hides it
        from mechgrade.render.html import write_report

        click.echo(f"Report: {write_report(result, recorder.values, report_path)}", err=as_json)
    sys.exit(0 if result.all_passed else 1)

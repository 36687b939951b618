"""`mechgrade validate`."""

import sys

import click

from mechgrade.cli.common import guard


@click.command("validate", short_help="Prove LESSON's graders catch real mistakes.")
@click.argument("lesson")
@click.option("--model", "model_spec", default=None, help="embedded (default), gpt2, or a local model directory.")
@guard
def validate(lesson: str, model_spec: str | None) -> None:
    """Prove LESSON's graders: reference full marks, stubs zero, every mutant caught with its hint.

    Exit status 1 when a mutant survives or leaks, the reference loses a point, a stub gains
    one, or a case is passed by a constant or by an input handed back."""
    from rich.console import Console
    from rich.markup import escape

    from mechgrade.engine.validate import validate_lesson
    from mechgrade.render.validation import render

    console = Console()
    with console.status("validating") as status:
        report = validate_lesson(lesson, model=model_spec, progress=lambda what: status.update(escape(f"validating: {what}")))
    render(report, console)
    sys.exit(0 if report.ok else 1)

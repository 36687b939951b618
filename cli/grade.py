"""`mechgrade grade`."""

from pathlib import Path

import click

from mechgrade.cli.common import Interrupted, guard


@click.command("grade", short_help="Grade a class of submissions into a gradebook.")
@click.argument("lesson")
@click.argument("submissions", type=click.Path(path_type=Path))
@click.option("-o", "--output", "gradebook", type=click.Path(path_type=Path), default=Path("gradebook.csv"), show_default=True, help="Gradebook CSV to write.")
@click.option("--results-dir", type=click.Path(path_type=Path), default=None, help="Where each student's results.json goes (default: next to the CSV).")
@click.option("-j", "--jobs", type=int, default=None, help="Submissions graded in parallel (default: number of cores).")
@click.option("--hidden", is_flag=True, help="Also run the hidden cases.")
@click.option("--resume", is_flag=True, help="Skip students whose results.json already exists.")
@click.option("--model", "model_spec", default=None, help="embedded (default), gpt2, or a local model directory.")
@click.option("--no-sandbox", is_flag=True, help="Grade even where no sandbox can be built: student code then runs as you.")
@click.option("--student-limit", "student_limit_s", type=click.FloatRange(min=10), default=600.0, show_default=True,
              help="Seconds one submission may take; cases not run by then are reported as not run.")
@guard
def grade(lesson: str, submissions: Path, gradebook: Path, results_dir: Path | None, jobs: int | None,
          hidden: bool, resume: bool, model_spec: str | None, no_sandbox: bool, student_limit_s: float) -> None:
    """Grade a class: SUBMISSIONS holds one subfolder, .zip, .ipynb or .py per student (Gradescope's export works).

    Exit status 130 when interrupted (Ctrl-C): the students graded by then are in the gradebook."""
    from rich.console import Console
    from rich.markup import escape

    from mechgrade.engine.gradebook import grade_class

    console = Console(stderr=True)
    results_dir = results_dir or gradebook.with_suffix("").with_name(gradebook.stem + "_results")
    with console.status("grading") as status:
        report = grade_class(lesson, submissions, gradebook=gradebook, results_dir=results_dir, model=model_spec,
                             hidden=hidden, jobs=jobs, resume=resume, no_sandbox=no_sandbox, student_limit_s=student_limit_s,
                             progress=lambda who, n, total: status.update(escape(f"graded {who} ({n}/{total})")))
    for line in report.summary_lines():
        click.echo(line)
    click.echo(f"gradebook: {gradebook}; per-student results.json: {results_dir}/")
    if report.interrupted:  # Ctrl-C: who was graded is saved above; the status says the run did not finish
        raise Interrupted()

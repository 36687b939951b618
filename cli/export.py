"""`mechgrade export`: what an instructor hands to Gradescope and to students."""

from pathlib import Path

import click

from mechgrade.cli.common import guard


@click.group("export", short_help="Build a Gradescope autograder or a student bundle.")
def export() -> None:
    """Build a Gradescope autograder or a student starter bundle for a lesson."""


@export.command("gradescope", short_help="Write a Gradescope autograder zip for LESSON.")
@click.argument("lesson")
@click.option("-o", "--output", "out", type=click.Path(path_type=Path), default=Path("autograder.zip"), show_default=True,
              help="Where to write the zip.")
@click.option("--model", "model_spec", default="embedded", show_default=True,
              help="embedded, gpt2 (fetched when Gradescope builds the image), or a local model directory (zipped).")
@click.option("--hidden-visibility", type=click.Choice(["after_published", "after_due_date", "hidden", "visible"]),
              default="after_published", show_default=True, help="When students see the hidden cases' results.")
@click.option("--mem-mb", type=click.IntRange(64), default=None,
              help="Memory the student's code may allocate, at most (default: 256 for embedded, 2048 otherwise).")
@click.option("--time-limit-min", type=click.FloatRange(2, 240), default=10, show_default=True,
              help="The assignment's autograder timeout in minutes; keep the two equal.")
@guard
def gradescope(lesson: str, out: Path, model_spec: str, hidden_visibility: str, mem_mb: int | None, time_limit_min: float) -> None:
    """Write a Gradescope autograder zip for LESSON (upload it as the assignment's autograder)."""
    from mechgrade import lessons
    from mechgrade.export.container import ContainerLimits, cpu_advice, student_allowance
    from mechgrade.export.gradescope import export_gradescope

    _check_output(out)
    done = export_gradescope(lesson, out, model=model_spec, hidden_visibility=hidden_visibility, mem_mb=mem_mb,
                             time_limit_min=time_limit_min)
    size = done.path.stat().st_size / 1e6
    key = f"answer key for {done.key_cases} cases included" if done.key_cases else "answer key computed by setup.sh at image build"
    click.echo(f"Wrote {done.path} ({size:.1f} MB): model '{done.model}', {key}.")
    plugin = lessons.get(lesson)
    room = student_allowance(done.model, plugin.peak_mb, done.mem_mb, ContainerLimits(memory_mb=done.container_mb))
    # One memory figure per container: what the student's code gets there, and the --mem-mb cap a bigger one reaches.
    click.echo(f"Set the assignment's autograder to: memory {done.container_mb} MB or more (student code then gets {room} MB; "
               f"a bigger container gives it more, up to --mem-mb {done.mem_mb}), "
               f"{cpu_advice(done.model, plugin.cpu_advice)}; "
               f"timeout {time_limit_min:g} min (grading stops at {done.grading_s} s, then results.json is written).")
    click.echo("Upload it under Configure Autograder > Zip file; students submit their .py files (loose or in a folder) or one .ipynb notebook.")


@export.command("student", short_help="Write a starter bundle for students (no solutions).")
@click.argument("lesson")
@click.option("-o", "--output", "out", type=click.Path(path_type=Path), default=Path("starter.zip"), show_default=True,
              help="Where to write the zip.")
@guard
def student(lesson: str, out: Path) -> None:
    """Write a starter bundle for LESSON: installable mechgrade without solutions or hidden cases."""
    from mechgrade.export.student import export_student

    _check_output(out)
    done = export_student(lesson, out)
    click.echo(f"Wrote {done.path} ({done.path.stat().st_size / 1e6:.1f} MB): {done.wheel}, a {lesson}/ workspace and "
               f"INSTALL.md; answer keys for: {', '.join(done.models)}.")


def _check_output(out: Path) -> None:
    from mechgrade.errors import MechgradeError

    if out.is_dir():
        raise MechgradeError(f"{out} is a folder; give the zip's file name, e.g. -o {out / 'autograder.zip'}.")
    if not out.parent.is_dir():
        raise MechgradeError(f"The folder {out.parent} does not exist; create it first or choose another -o.")

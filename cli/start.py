"""`mechgrade start`."""

from pathlib import Path

import click

from mechgrade.cli.common import guard


@click.command("start", short_help="Create a workspace (folder or notebook) for LESSON.")
@click.argument("lesson")
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@click.option("--solutions", is_flag=True, help="Fill in the reference solutions (instructors, demos).")
@click.option("--force", is_flag=True, help="Write into a non-empty directory; replaced files are kept as .bak copies.")
@click.option("--model", "model_spec", default=None, help="Model the instructions describe (default: embedded).")
@click.option("--notebook", is_flag=False, flag_value="", default=None, metavar="[PATH]",
              help="Write one Jupyter notebook instead (default LESSON.ipynb, inside DIRECTORY if given).")
@guard
def start(lesson: str, directory: Path | None, solutions: bool, force: bool, model_spec: str | None,
          notebook: str | None) -> None:
    """Create a workspace for LESSON in DIRECTORY (default ./LESSON): stubs and instructions."""
    from mechgrade.models.spec import spec_from_env
    from mechgrade.spec import load_lesson
    from mechgrade.workspace import create_notebook, create_workspace

    spec = load_lesson(lesson)
    if notebook is not None:
        path = (directory or Path(".")) / (notebook or f"{lesson}.ipynb")
        before = set(path.parent.glob(f"{path.name}.bak-*"))
        create_notebook(spec, path, solutions=solutions, force=force, model_spec=spec_from_env(model_spec))
        click.echo(f"Created {path}: open it in Jupyter, fill in the TODOs and run each check(...) cell; "
                   f"grade the saved notebook with: mechgrade check {lesson} --path {path}")
        _say_kept(sorted(set(path.parent.glob(f"{path.name}.bak-*")) - before))
        return
    directory = directory or Path(lesson)
    created = create_workspace(spec, directory, solutions=solutions, force=force, model_spec=spec_from_env(model_spec))
    click.echo(f"Created {directory}/ with {', '.join(p.name for p in created.written)}.")
    _say_kept(created.kept)
    check = f"mechgrade check {lesson}" + (f" --path {directory}" if directory != Path(lesson) else "")
    if solutions:
        click.echo(f"These are the reference solutions; `{check}` should give full marks.")
    else:
        click.echo(f"Read {directory}/README.md, fill in the TODOs, then run: {check}")


def _say_kept(kept: list[Path]) -> None:
    """--force never loses work; it says where the replaced files went."""
    if kept:
        click.echo(f"Kept your previous files as {', '.join(str(p) for p in kept)}.")

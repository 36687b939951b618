"""`mechgrade new`: the authoring kit."""

from __future__ import annotations

from pathlib import Path

import click

from mechgrade.cli.common import guard


def _require_kit() -> None:
    """A student bundle leaves the authoring kit out: say so instead of an ImportError."""
    import importlib.util

    from mechgrade.errors import AuthoringError

    if importlib.util.find_spec("mechgrade.authoring") is None:
        raise AuthoringError("The authoring kit is for instructors and is not part of this student bundle of mechgrade; "
                             "install mechgrade itself to write lessons.")


@click.group("new", short_help="Authors: start a lesson package, or regenerate a lesson's stubs.")
def new() -> None:
    """Authoring kit (the guide: docs/authoring.md)."""


@new.command("lesson", short_help="Write a lesson package that validates out of the box.")
@click.argument("name")
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@click.option("--title", default="", help="The lesson's title (default: 'Lesson NAME').")
@guard
def lesson(name: str, directory: Path | None, title: str) -> None:
    """Write a lesson package NAME into DIRECTORY (default ./NAME): a pyproject.toml with the
    entry point, a spec with one exercise, its reference, case builder, stubs, templates and a
    mutant, and a README for you."""
    _require_kit()
    from mechgrade.authoring.scaffold import new_lesson

    done = new_lesson(name, directory or Path(name), title)
    click.echo(f"Created {done.root}/ ({len(done.files)} files): the lesson package {name}. Next:")
    shown = done.root if done.root.is_absolute() or str(done.root).startswith(".") else f"./{done.root}"
    click.echo(f"  pip install -e {shown}")
    click.echo(f"  mechgrade validate {name}")
    click.echo(f"then make it yours, with {done.root}/README.md and docs/authoring.md.")


@new.command("stubs", short_help="Rewrite an installed lesson's stubs from its reference.")
@click.argument("lesson")
@guard
def stubs(lesson: str) -> None:
    """Rewrite LESSON's stubs package from its reference: each public function keeps its
    signature and docstring, its body becomes a TODO (for a lesson installed with pip -e)."""
    _require_kit()
    from mechgrade.authoring.stubs import regenerate

    written = regenerate(lesson)
    click.echo(f"Wrote {len(written)} stub module(s) into {written[0].parent if written else 'nothing'}.")

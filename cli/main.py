"""The ``mechgrade`` command: a thin click layer over the library.

Command modules import only click at import time, so ``--help`` and ``list`` stay fast;
domain errors become one-line messages here and nowhere else.
"""

from __future__ import annotations

import click

from mechgrade import __version__
from mechgrade.cli import check, export, grade, list_cmd, models, new, start, validate
from mechgrade.cli.common import run_guarded


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mechgrade")
def cli() -> None:
    """Auto-graded mechanistic interpretability exercises on TransformerLens.

    See the installed lessons with `mechgrade list`; start one with
    `mechgrade start LESSON` (e.g. lesson27), fill in the TODOs, then
    `mechgrade check LESSON` for points and feedback.
    """


cli.add_command(list_cmd.list_lessons)
cli.add_command(models.models)
cli.add_command(start.start)
cli.add_command(check.check)
cli.add_command(validate.validate)
cli.add_command(grade.grade)
cli.add_command(export.export)
cli.add_command(new.new)


def main() -> None:
    run_guarded(cli)

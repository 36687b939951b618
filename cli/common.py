"""Shared CLI plumbing: the one place where domain errors become messages."""

from __future__ import annotations

import sys

import click

from mechgrade.errors import MechgradeError

USAGE_ERROR = 2


class MechgradeClickError(click.ClickException):
    exit_code = USAGE_ERROR


def run_guarded(cli: click.Group) -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except MechgradeError as err:
        click.echo(f"Error: {err}", err=True)
        sys.exit(USAGE_ERROR)


def guard(fn):
    """Decorator for command bodies: a ``MechgradeError`` becomes a one-line CLI error (exit 2)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MechgradeError as err:
            raise MechgradeClickError(str(err)) from None

    return wrapper

"""Shared CLI plumbing: the one place where domain errors become messages."""

from __future__ import annotations

import sys

import click

from mechgrade.errors import MechgradeError

USAGE_ERROR = 2
INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a command stopped by Ctrl-C


class MechgradeClickError(click.ClickException):
    exit_code = USAGE_ERROR


class Interrupted(click.ClickException):
    """Ctrl-C: one word on stderr and 130, never a traceback, a table or an exit status of 0
    (``mechgrade check && git push`` must stop)."""

    exit_code = INTERRUPTED

    def __init__(self) -> None:
        super().__init__("interrupted")

    def show(self, file=None) -> None:
        click.echo("interrupted", err=True)


def run_guarded(cli: click.Group) -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)
    except (click.Abort, KeyboardInterrupt):  # Ctrl-C outside a command body (click turns it into Abort)
        Interrupted().show()
        sys.exit(INTERRUPTED)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except MechgradeError as err:
        click.echo(f"Error: {err}", err=True)
        sys.exit(USAGE_ERROR)


def guard(fn):
    """Decorator for command bodies: a ``MechgradeError`` becomes a one-line CLI error (exit 2),
    Ctrl-C the one word "interrupted" (exit 130)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MechgradeError as err:
            raise MechgradeClickError(str(err)) from None
        except KeyboardInterrupt:
            raise Interrupted() from None

    return wrapper

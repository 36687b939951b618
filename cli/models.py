"""`mechgrade models`."""

import click

from mechgrade.cli.common import guard


@click.command("models", short_help="Show the usable models; --inspect describes one.")
@click.option("--inspect", "inspect_spec", metavar="SPEC", default=None, help="Boot SPEC and describe it, with its head scores.")
@guard
def models(inspect_spec: str | None) -> None:
    """Show which model specs can be used here (embedded, gpt2 if cached, local directories)."""
    if inspect_spec:
        from mechgrade.errors import ModelUnavailable
        from mechgrade.models.inspect import describe

        try:
            click.echo(describe(inspect_spec))
        except ModelUnavailable as err:  # its advice names --model; here the option is --inspect
            raise ModelUnavailable(str(err).replace("--model ", "--inspect ")) from None
        return
    from mechgrade.models.spec import available_models, spec_from_env

    click.echo(f"default: {spec_from_env()}  (set with --model or MECHGRADE_MODEL)")
    for m in available_models():
        click.echo(f"  {m.spec:<12} {'available' if m.available else 'missing  '}  {m.detail}")
    click.echo("  <directory>  any local Hugging Face model directory (config.json + weights + tokenizer)")

"""The ``vidcolor models`` command: the registry, and what is installed."""

from __future__ import annotations

import json

import click

from vidcolor.cli.common import run_command


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def models_cmd(as_json: bool) -> None:
    """List the colorization models, their licences and whether their weights are here."""

    def body() -> None:
        from dataclasses import asdict

        import vidcolor.models as models

        infos = models.available()
        if as_json:
            click.echo(json.dumps([asdict(i) for i in infos], indent=2))
        else:
            click.echo(models.format_models_table(infos))

    run_command(body, False)

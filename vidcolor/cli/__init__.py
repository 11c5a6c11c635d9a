"""The vidcolor command line: one group, and its commands registered here from the modules that
define them (vidcolor/cli/*.py). Nothing below the command line imports it.

Errors a user can fix are printed on one line with a non-zero exit and no traceback (``--debug``
shows one). Ctrl-C and SIGTERM stop cleanly: the temporary output is removed.
"""

from __future__ import annotations

import click

from vidcolor.allocator import tune
from vidcolor.cli.batch import batch_command
from vidcolor.cli.bench import bench_command
from vidcolor.cli.colorize import colorize, export_cmd
from vidcolor.cli.evaluate import eval_cmd
from vidcolor.cli.models import models_cmd
from vidcolor.cli.preview import preview_command
from vidcolor.cli.train import train
from vidcolor.version import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vidcolor")
def main() -> None:
    """Remaster black-and-white film into colour, keeping every frame, timestamp, sound and subtitle."""


COMMANDS = (colorize, export_cmd, models_cmd, train, eval_cmd, batch_command, bench_command, preview_command)
for command in COMMANDS:
    main.add_command(command)


def run() -> None:
    """The ``vidcolor`` command: the allocator tuned for big buffers (vidcolor/allocator.py), then
    :func:`main`."""
    tune()
    main()

"""Command-line entry point shared by train.py, generate.py, calc_metrics.py and dataset_tool.py:
every mistake a user can make is reported as one line naming the option or file, with exit code 2."""

import os
import sys

import click

from .util import UserError

#----------------------------------------------------------------------------

def run_cli(command: click.Command, args=None, prog: str = None) -> None:
    """Run a click command; usage errors and UserError print '<prog>: error: <message>' and exit 2.
    args and prog default to sys.argv."""
    prog = prog or os.path.basename(sys.argv[0])
    try:
        command.main(args=args, prog_name=prog, standalone_mode=False)
    except click.exceptions.Abort:
        print(f'{prog}: aborted', file=sys.stderr)
        sys.exit(1)
    except (click.ClickException, UserError) as err:
        message = err.format_message() if isinstance(err, click.ClickException) else str(err)
        print(f'{prog}: error: {message}', file=sys.stderr)
        sys.exit(2)

#----------------------------------------------------------------------------

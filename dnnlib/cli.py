"""Command-line entry point shared by train.py, generate.py, calc_metrics.py and dataset_tool.py:
every mistake a user can make is reported as one line naming the option or file, with exit code 2."""

import os
import re
import sys
from typing import List, Optional

import click

from .malloc import tune_malloc
from .util import UserError

#----------------------------------------------------------------------------

def run_cli(command: click.Command, args=None, prog: str = None) -> None:
    """Run a click command; usage errors and UserError print '<prog>: error: <message>' and exit 2.
    args and prog default to sys.argv. The allocator settings of dnnlib/malloc.py are applied first."""
    tune_malloc()
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

def parse_range(s: str, max_value: Optional[int] = None) -> List[int]:
    """Parse a comma-separated list of non-negative integers and inclusive ranges: '0-99,200' -> [0, ..., 99, 200].
    Order and repeats are kept as written; values above max_value (if given) are rejected before any range is
    expanded. Raises click.BadParameter, so as a click callback the message is reported with the option's name."""
    values = []
    for item in str(s).split(','):
        match = re.fullmatch(r'\s*(\d+)\s*(?:-\s*(\d+)\s*)?', item)
        if match is None:
            raise click.BadParameter(f'"{s}": expected integers and ranges like 0-99,200')
        lo = int(match.group(1))
        hi = int(match.group(2)) if match.group(2) is not None else lo
        if hi < lo:
            raise click.BadParameter(f'"{s}": range {lo}-{hi} is empty (expected low-high with low <= high)')
        if max_value is not None and hi > max_value:
            raise click.BadParameter(f'"{s}": {hi} is too large (at most {max_value})')
        values.extend(range(lo, hi + 1))
    return values

#----------------------------------------------------------------------------

"""Command-line entry point shared by every tool (train.py, generate.py, calc_metrics.py, dataset_tool.py, the toolbox
and the benchmarks): every mistake a user can make is reported as one line naming the option or file, with exit
code 2; and the checks of output paths that the tools make before they write anything."""

import contextlib
import os
import re
import sys
import tempfile
from typing import List, Optional

import click

from .malloc import tune_malloc
from .util import UserError

#----------------------------------------------------------------------------

def run_cli(command: click.Command, args=None, prog: str = None) -> None:
    """Run a click command; usage errors, UserError and file-system errors that name a file (a full disk, a
    read-only file system met while writing) print '<prog>: error: <message>' and exit 2. args and prog default to
    sys.argv. The allocator settings of dnnlib/malloc.py are applied first."""
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
    except OSError as err:
        if err.filename is None:
            raise
        print(f'{prog}: error: {err.filename}: {err.strerror}', file=sys.stderr)
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

def check_output_path(path: str, option: str, is_dir: bool = True) -> None:
    """UserError unless path can be written as a directory (is_dir) or a file: what exists of it must be of that
    kind, and its nearest existing ancestor a directory in which a file can be created. That is probed with a
    temporary file, removed at once: permission bits miss read-only and virtual file systems (/proc) and do not
    bind root. Call it before anything is written."""
    if os.path.exists(path) and os.path.isdir(path) != is_dir:
        raise UserError(f'{option}={path}: exists and is {"not " if is_dir else ""}a directory')
    ancestor = os.path.abspath(path) if is_dir else os.path.dirname(os.path.abspath(path))
    while not os.path.exists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        raise UserError(f'{option}={path}: {ancestor} is a file, not a directory')
    try:
        with tempfile.TemporaryFile(dir=ancestor):
            pass
    except OSError as err:
        raise UserError(f'{option}={path}: cannot write in {ancestor} ({err.strerror})') from err

def make_dirs(path: str, option: str) -> None:
    """os.makedirs(path, exist_ok=True) after check_output_path; on failure (e.g. a name too long) a UserError
    naming option, and the folders created on the way are removed again."""
    check_output_path(path, option)
    created = []
    d = os.path.abspath(path)
    while not os.path.exists(d):
        created.append(d)
        d = os.path.dirname(d)
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as err:
        for d in created:
            with contextlib.suppress(OSError):
                os.rmdir(d)
        raise UserError(f'{option}={path}: cannot create the directory ({err.strerror})') from err

#----------------------------------------------------------------------------

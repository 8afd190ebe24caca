"""Running the command-line tools in-process, as a user would see them (one copy for every CLI test)."""

import re

from dnnlib.cli import run_cli

_PROGRESS_BAR = re.compile(r'\d+/\d+ \[')   # a tqdm progress line

def run_command(capsys, command, prog: str, *args):
    """Run a click command through dnnlib.cli.run_cli; return (exit code, stdout lines, stderr lines without
    blank lines and tqdm progress bars)."""
    try:
        run_cli(command, args=[str(arg) for arg in args], prog=prog)
        code = 0
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    err = [line for line in re.split(r'[\r\n]', captured.err) if line.strip() and not _PROGRESS_BAR.search(line)]
    return code, captured.out.splitlines(), err

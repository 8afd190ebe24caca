"""glibc allocator settings for CPU training and inference, applied at start-up by every command-line tool
(dnnlib.cli.run_cli) and by the processes that --gpus N spawns.

With glibc's defaults, every tensor above the dynamic mmap threshold (at most 32 MiB, and it starts at 128 KiB) is
mmapped when allocated and unmapped when freed, and the top of the heap is trimmed back to the system after each
free: PyTorch's CPU tensors go through that cycle every training step, the kernel zeroes the fresh pages each
time, and on a small CPU the system time reached ~45% of the whole (benchmarks/bench_train.py --compare). Keeping
freed memory in the process instead costs resident memory (the peak of one step stays mapped) and saves that time.

The settings are those of glibc's MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_ and MALLOC_TOP_PAD_ environment
variables; where the user sets any of those, or DIFFUSION_GAN_MALLOC=default, nothing is changed."""

import ctypes
import ctypes.util
import os
import sys

from .util import UserError

#----------------------------------------------------------------------------

# mallopt() parameter numbers (malloc.h) and the values applied: sizes in bytes, C ints.
M_TRIM_THRESHOLD = -1
M_TOP_PAD        = -2
M_MMAP_THRESHOLD = -3
SETTINGS = {
    M_MMAP_THRESHOLD: 1 << 30,      # blocks up to 1 GiB come from the heap, reused across steps
    M_TRIM_THRESHOLD: 2**31 - 1,    # never give the heap's free top back to the system mid-run
    M_TOP_PAD:        1 << 28,      # grow the heap 256 MiB at a time, fewer brk calls
}
USER_VARIABLES = ('MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_', 'MALLOC_TOP_PAD_')
SWITCH = 'DIFFUSION_GAN_MALLOC' # 'default' keeps glibc's defaults (the benchmarks' reference)

_applied = None

#----------------------------------------------------------------------------

def tune_malloc() -> bool:
    """Apply SETTINGS through mallopt() once per process; True if they are in force. A no-op (False) off glibc,
    where the user chose any of the allocator's variables, or with DIFFUSION_GAN_MALLOC=default."""
    global _applied
    if _applied is None:
        _applied = False
        if sys.platform.startswith('linux') and os.environ.get(SWITCH, '') != 'default' and not any(name in os.environ for name in USER_VARIABLES):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
                mallopt = libc.mallopt
            except (OSError, AttributeError):
                return False # musl or another libc without mallopt
            mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            _applied = all(mallopt(param, value) == 1 for param, value in SETTINGS.items())
    return _applied

#----------------------------------------------------------------------------

def child_environment(glibc_defaults: bool) -> dict:
    """os.environ for a child process (the benchmarks' reference and fast runs) without glibc's allocator variables of
    the caller: the child tunes the allocator at start-up, or with glibc_defaults keeps glibc's own defaults."""
    env = {key: value for key, value in os.environ.items() if key not in USER_VARIABLES and key != SWITCH}
    return dict(env, **{SWITCH: 'default'}) if glibc_defaults else env

def require_glibc_defaults(option: str, hint: str) -> None:
    """UserError unless this process kept glibc's allocator defaults: a reference measurement (option) cannot undo
    settings that tune_malloc() applied at start-up. hint: how else to get the measurement."""
    if tune_malloc():
        raise UserError(f'{option} needs glibc\'s default allocator: run it with {SWITCH}=default in the environment, or {hint}')

#----------------------------------------------------------------------------

"""Preemption: SIGTERM or SIGUSR1 (what cluster schedulers send before killing a job, e.g. SLURM's
--signal=USR1@120) asks the training to stop. The handler only raises a flag; the training loop asks after every
minibatch whether any rank has it (the signal may reach one rank only), and then every rank stops together: rank 0
writes a snapshot with the full resume state and all ranks exit with PREEMPTED_EXIT_CODE. The same command with
--resume=auto continues the run exactly."""

import signal

import torch

PREEMPTED_EXIT_CODE = 75                        # EX_TEMPFAIL of sysexits.h: preempted, a snapshot was written, rerun to resume
SIGNALS = (signal.SIGTERM, signal.SIGUSR1)      # the signals that request a stop

_requested = dict(signal=None)                  # the number of the signal received, None = none

#----------------------------------------------------------------------------

def _handler(signum, _frame) -> None:
    _requested['signal'] = signum

def install() -> None:
    """Raise the flag on SIGTERM and SIGUSR1 in this process (instead of dying at once) and clear it."""
    _requested['signal'] = None
    for signum in SIGNALS:
        signal.signal(signum, _handler)

def requested() -> bool:
    """Whether this process received a stop signal since install()."""
    return _requested['signal'] is not None

def agreed(num_gpus: int, device: torch.device) -> bool:
    """Whether any rank received a stop signal: a collective, so every rank must call it at the same point."""
    if num_gpus == 1:
        return requested()
    flag = torch.tensor([1 if requested() else 0], dtype=torch.int32, device=device)
    torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
    return bool(flag.item())

#----------------------------------------------------------------------------

"""Statistics reported from anywhere in the training code and collected across processes.

report(name, value) adds the count, sum and sum of squares of the value's elements to a float64 accumulator
(per device, so no GPU->CPU transfer happens in the hot path). A Collector periodically syncs the accumulators
(all-reduced across ranks when torch.distributed is initialized) and exposes num/mean/std of everything
reported since its previous update(). Only names matched by some Collector's regex are accumulated, so
reports nobody reads cost a dict lookup.

Every rank must report the same set of names (values may be empty) and call update() at the same points,
because the all-reduce pairs up the accumulators by name."""

import re
import weakref
from typing import Any, List, Optional

import numpy as np
import torch

import dnnlib
from torch_utils import misc

#----------------------------------------------------------------------------

_num_moments    = 3                 # [count, sum, sum of squares].
_counter_dtype  = torch.float64     # Accumulate in double: long runs sum millions of values.
_rank           = 0                 # Rank of this process, set by init_multiprocessing().
_sync_device    = None              # Device for the all-reduce, set by init_multiprocessing(); None = infer.
_sync_called    = False             # True once any Collector has synced; init_multiprocessing() must come first.
_counters       = dict()            # name -> {device: accumulated moments}, reset at every sync.
_collectors     = weakref.WeakSet()  # Live Collectors; each sync hands its deltas to every one that watches the name.
_collect_regexes = []               # Compiled regexes of all Collectors; a name is accumulated iff one matches.
_is_collected   = dict()            # name -> bool, cache of the regex decision.

#----------------------------------------------------------------------------

def init_multiprocessing(rank: int, sync_device: Optional[torch.device]) -> None:
    """Set this process's rank (report0 keeps only rank 0's values) and the device of the cross-rank
    all-reduce: a CUDA device for NCCL, the CPU for gloo, None for the backend's default. Call once, before
    the first Collector.update()."""
    global _rank, _sync_device
    if _sync_called:
        raise RuntimeError('training_stats.init_multiprocessing() must be called before the first Collector.update()')
    _rank = rank
    _sync_device = torch.device(sync_device) if sync_device is not None else None

#----------------------------------------------------------------------------

def _collected(name: str) -> bool:
    result = _is_collected.get(name, None)
    if result is None:
        result = any(regex.fullmatch(name) for regex in _collect_regexes)
        _is_collected[name] = result
    return result

def report(name: str, value: Any) -> Any:
    """Accumulate the elements of value (scalar, sequence or tensor of any shape) under name; returns value
    unchanged so that it can wrap an expression. An empty value registers the name without adding to it."""
    if not _collected(name):
        return value
    counters = _counters.setdefault(name, dict())
    elems = torch.as_tensor(value)
    if elems.numel() == 0:
        return value
    elems = elems.detach().flatten().to(_counter_dtype)
    moments = torch.stack([torch.ones_like(elems).sum(), elems.sum(), elems.square().sum()])
    if moments.device not in counters:
        counters[moments.device] = torch.zeros_like(moments)
    counters[moments.device].add_(moments)
    return value

#----------------------------------------------------------------------------

def report0(name: str, value: Any) -> Any:
    """Like report(), but only rank 0's value counts; the other ranks still register the name."""
    report(name, value if _rank == 0 else [])
    return value

#----------------------------------------------------------------------------

def _sync(names: List[str]) -> None:
    """Move the per-device accumulators of `names` (summed over ranks) into the pending statistics of every
    Collector that watches them. Each sync's deltas are handed over once, so a non-finite value spoils only the
    statistics of the interval it was reported in."""
    global _sync_called
    if len(names) == 0:
        return
    _sync_called = True
    distributed = misc.num_ranks() > 1

    device = _sync_device
    if device is None:
        device = torch.device('cpu')
        if distributed and torch.distributed.get_backend() == 'nccl': # NCCL only reduces CUDA tensors.
            device = torch.device('cuda', torch.cuda.current_device())

    deltas = []
    for name in names:
        delta = torch.zeros([_num_moments], dtype=_counter_dtype, device=device)
        for counter in _counters.get(name, dict()).values():
            delta.add_(counter.to(device))
            counter.zero_()
        deltas.append(delta)
    deltas = torch.stack(deltas)
    if distributed:
        torch.distributed.all_reduce(deltas)
    deltas = deltas.cpu()

    for collector in list(_collectors):
        for idx, name in enumerate(names):
            if collector._regex.fullmatch(name):
                if name not in collector._pending:
                    collector._pending[name] = torch.zeros([_num_moments], dtype=_counter_dtype)
                collector._pending[name].add_(deltas[idx])

#----------------------------------------------------------------------------

class Collector:
    """Reads the statistics of all names fully matching a regex, as of its last update().

    Several collectors may watch overlapping names with different update intervals: every sync hands its deltas
    to each collector watching the name, and each collector reports what it received since its previous update."""

    def __init__(self,
        regex:          str = '.*',     # Names to collect, matched with re.fullmatch.
        keep_previous:  bool = True,    # Keep a name's last statistics if nothing new was reported for it.
    ):
        self._regex = re.compile(regex)
        self._keep_previous = keep_previous
        self._pending = dict()
        self._moments = dict()
        _collect_regexes.append(self._regex)
        _is_collected.clear()
        _collectors.add(self)
        self.update()
        self._moments.clear() # Only what is reported after construction counts.

    def names(self) -> List[str]:
        """Matching names reported so far, in sorted order (identical on every rank)."""
        return sorted(name for name in _counters if self._regex.fullmatch(name))

    def update(self) -> None:
        """Sync with the other ranks and take the statistics reported since the previous update()."""
        if not self._keep_previous:
            self._moments.clear()
        _sync(self.names())
        for name, delta in self._pending.items():
            if float(delta[0]) != 0:
                self._moments[name] = delta
        self._pending = dict()

    def _get_delta(self, name: str) -> torch.Tensor:
        return self._moments.get(name, torch.zeros([_num_moments], dtype=_counter_dtype))

    def num(self, name: str) -> int:
        """Number of scalars reported under name between the last two updates."""
        return int(self._get_delta(name)[0])

    def mean(self, name: str) -> float:
        """Mean of those scalars, NaN if there were none."""
        delta = self._get_delta(name)
        if int(delta[0]) == 0:
            return float('nan')
        return float(delta[1] / delta[0])

    def std(self, name: str) -> float:
        """Population standard deviation (ddof = 0) of those scalars, NaN if there were none."""
        delta = self._get_delta(name)
        if int(delta[0]) == 0 or not np.isfinite(float(delta[1])):
            return float('nan')
        if int(delta[0]) == 1:
            return 0.0
        mean = float(delta[1] / delta[0])
        raw_var = float(delta[2] / delta[0])
        return float(np.sqrt(max(raw_var - mean ** 2, 0.0))) # Clamp: cancellation can make the difference slightly negative.

    def as_dict(self) -> dnnlib.EasyDict:
        """All matching names as EasyDict(name=EasyDict(num=..., mean=..., std=...)), e.g. for a JSON log."""
        stats = dnnlib.EasyDict()
        for name in self.names():
            stats[name] = dnnlib.EasyDict(num=self.num(name), mean=self.mean(name), std=self.std(name))
        return stats

    def __getitem__(self, name: str) -> float:
        """Shorthand for mean(name)."""
        return self.mean(name)

#----------------------------------------------------------------------------

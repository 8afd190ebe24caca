"""Small PyTorch helpers used throughout the networks and the training loop: cached constants, shape assertions
that survive tracing, profiling labels, the endless data sampler, parameter copying, DDP helpers and a module summary.

Official network pickles embed source that calls assert_shape, suppress_tracer_warnings, profiled_function and
ddp_sync by these names, so the names and signatures are fixed."""

import contextlib
import copy
import functools
import re
import warnings
from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

import dnnlib

#----------------------------------------------------------------------------
# Cached construction of constant tensors. Networks call this on every forward pass (e.g. for filter taps
# or per-layer gains), so the tensor is built and copied to the device only once per distinct value.

_constant_cache = dict()

def constant(value: Any, shape: Optional[Sequence[int]] = None, dtype: Optional[torch.dtype] = None, device: Optional[torch.device] = None, memory_format: Optional[torch.memory_format] = None) -> torch.Tensor:
    value = np.asarray(value)
    if shape is not None:
        shape = tuple(shape)
    if dtype is None:
        dtype = torch.get_default_dtype()
    if device is None:
        device = torch.device('cpu')
    device = torch.device(device)
    if memory_format is None:
        memory_format = torch.contiguous_format

    key = (value.shape, value.dtype, value.tobytes(), shape, dtype, device, memory_format)
    tensor = _constant_cache.get(key, None)
    if tensor is None:
        # Built outside inference mode: a cached inference tensor would poison later autograd use.
        with torch.inference_mode(False):
            tensor = torch.as_tensor(value.copy(), dtype=dtype, device=device)
            if shape is not None:
                tensor, _ = torch.broadcast_tensors(tensor, torch.empty(shape, dtype=dtype, device=device))
            tensor = tensor.contiguous(memory_format=memory_format)
        _constant_cache[key] = tensor
    return tensor

#----------------------------------------------------------------------------
# Replace NaN/Inf by finite numbers; kept as a name because network source code calls misc.nan_to_num().

nan_to_num = torch.nan_to_num

#----------------------------------------------------------------------------

class suppress_tracer_warnings(warnings.catch_warnings):
    """Context manager that silences torch.jit.TracerWarning, e.g. around Python-side checks on traced shapes."""

    def __enter__(self) -> 'suppress_tracer_warnings':
        super().__enter__()
        warnings.simplefilter('ignore', category=torch.jit.TracerWarning)
        return self

#----------------------------------------------------------------------------

def assert_shape(tensor: torch.Tensor, ref_shape: Sequence[Any]) -> None:
    """Raise AssertionError unless tensor.shape matches ref_shape; None entries match any size.

    Under torch.jit.trace sizes may be tensors; those are checked with torch._assert so the check is recorded
    in the graph rather than baked in as a constant."""
    if tensor.ndim != len(ref_shape):
        raise AssertionError(f'Wrong number of dimensions: got {tensor.ndim}, expected {len(ref_shape)} (shape {list(tensor.shape)} vs {list(ref_shape)})')
    for idx, (size, ref_size) in enumerate(zip(tensor.shape, ref_shape)):
        if ref_size is None:
            continue
        if isinstance(ref_size, torch.Tensor) or isinstance(size, torch.Tensor):
            with suppress_tracer_warnings():
                torch._assert(torch.equal(torch.as_tensor(size), torch.as_tensor(ref_size)), f'Wrong size for dimension {idx}: expected {ref_size}')
        elif size != ref_size:
            raise AssertionError(f'Wrong size for dimension {idx}: got {size}, expected {ref_size} (shape {list(tensor.shape)} vs {list(ref_shape)})')

#----------------------------------------------------------------------------

def profiled_function(fn: Callable) -> Callable:
    """Decorator that labels every call of fn in the PyTorch profiler's trace with the function's name."""
    @functools.wraps(fn)
    def decorator(*args, **kwargs):
        with torch.autograd.profiler.record_function(fn.__name__):
            return fn(*args, **kwargs)
    return decorator

#----------------------------------------------------------------------------

class InfiniteSampler(torch.utils.data.Sampler):
    """Endless stream of dataset indices for a training loop counted in images rather than epochs.

    With shuffling, each yielded slot is afterwards swapped with a random slot at most `window` positions behind
    it, so the order keeps changing from pass to pass while every index stays in play. The global stream is
    dealt round-robin: rank r gets positions r, r + num_replicas, ... so that ranks never draw the same slot.
    The order for a given seed equals that of StyleGAN2-ADA, which keeps runs comparable. With start_idx the
    stream begins at that global position, exactly as if the earlier positions had been drawn (resuming)."""

    def __init__(self,
        dataset:        Any,            # Anything with len().
        rank:           int = 0,        # Index of this process, 0 <= rank < num_replicas.
        num_replicas:   int = 1,        # Number of processes sharing the stream.
        shuffle:        bool = True,    # Shuffle the order, False = 0, 1, 2, ... cyclically.
        seed:           int = 0,        # Seed of the shuffle; identical on all ranks.
        window_size:    float = 0.5,    # Reshuffle window as a fraction of the dataset size, in [0, 1].
        start_idx:      int = 0,        # Position in the global stream to start at (resuming), >= 0.
    ):
        if len(dataset) <= 0:
            raise dnnlib.UserError('InfiniteSampler: the dataset is empty')
        if not (num_replicas > 0 and 0 <= rank < num_replicas):
            raise ValueError(f'InfiniteSampler: need 0 <= rank < num_replicas, got rank={rank}, num_replicas={num_replicas}')
        if not 0 <= window_size <= 1:
            raise ValueError(f'InfiniteSampler: window_size must be in [0, 1], got {window_size}')
        if start_idx < 0:
            raise ValueError(f'InfiniteSampler: start_idx must be >= 0, got {start_idx}')
        super().__init__()
        self.dataset = dataset
        self.rank = rank
        self.num_replicas = num_replicas
        self.shuffle = shuffle
        self.seed = seed
        self.window_size = window_size
        self.start_idx = start_idx

    def __iter__(self) -> Iterator[int]:
        order = np.arange(len(self.dataset))
        rnd = None
        window = 0
        if self.shuffle:
            rnd = np.random.RandomState(self.seed)
            rnd.shuffle(order)
            window = int(np.rint(order.size * self.window_size))

        # Fast-forward to start_idx: the order depends on every earlier swap, so they are replayed in bulk
        # (RandomState.randint(w, size=n) draws the same numbers as n single calls).
        idx = self.start_idx
        if window >= 2:
            swaps = order.tolist()
            for chunk_start in range(0, idx, 1 << 16):
                offsets = rnd.randint(window, size=min(1 << 16, idx - chunk_start)).tolist()
                for k, offset in enumerate(offsets):
                    i = (chunk_start + k) % order.size
                    j = (i - offset) % order.size
                    swaps[i], swaps[j] = swaps[j], swaps[i]
            order = np.array(swaps, dtype=order.dtype)
        while True:
            i = idx % order.size
            if idx % self.num_replicas == self.rank:
                yield int(order[i])
            if window >= 2:
                j = (i - rnd.randint(window)) % order.size
                order[i], order[j] = order[j], order[i]
            idx += 1

#----------------------------------------------------------------------------

def params_and_buffers(module: torch.nn.Module) -> List[torch.Tensor]:
    """All parameters followed by all buffers of a module."""
    return list(module.parameters()) + list(module.buffers())

def named_params_and_buffers(module: torch.nn.Module) -> List[Tuple[str, torch.Tensor]]:
    """All (name, tensor) pairs of parameters followed by buffers of a module."""
    return list(module.named_parameters()) + list(module.named_buffers())

#----------------------------------------------------------------------------

def deepcopy_module(module: torch.nn.Module) -> torch.nn.Module:
    """copy.deepcopy of a module that may hold tensors computed in its last forward pass as plain attributes
    (spectral normalization's 'weight'), which deepcopy refuses while they are part of an autograd graph: those
    are copied detached."""
    memo = dict()
    for submodule in module.modules():
        for value in vars(submodule).values():
            if isinstance(value, torch.Tensor) and not value.is_leaf:
                memo[id(value)] = value.detach().clone()
    return copy.deepcopy(module, memo)

#----------------------------------------------------------------------------

def num_ranks() -> int:
    """The processes of the torch.distributed job, 1 without one."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return 1
    return torch.distributed.get_world_size()

#----------------------------------------------------------------------------

@torch.no_grad()
def momentum_update(target: torch.nn.Module, source: torch.nn.Module, momentum: float) -> None:
    """Every parameter of target <- momentum * itself + (1 - momentum) * source's (buffers untouched): MoCo's key
    encoder, InsGen's D_ema."""
    for p_target, p_source in zip(target.parameters(), source.parameters()):
        p_target.copy_(p_target * momentum + p_source * (1 - momentum))

#----------------------------------------------------------------------------

@torch.no_grad()
def copy_params_and_buffers(src_module: torch.nn.Module, dst_module: torch.nn.Module, require_all: bool = False) -> None:
    """Copy parameter and buffer values by name from src_module into dst_module (e.g. resuming from a pickle).

    Names missing in src are left untouched unless require_all; a shape mismatch is an error rather than
    a silent broadcast, because it means the two networks have different architectures."""
    src_tensors = dict(named_params_and_buffers(src_module))
    for name, tensor in named_params_and_buffers(dst_module):
        if name not in src_tensors:
            if require_all:
                raise KeyError(f'copy_params_and_buffers: "{name}" is missing in the source module')
            continue
        src = src_tensors[name]
        if src.shape != tensor.shape:
            raise ValueError(f'copy_params_and_buffers: "{name}" has shape {list(src.shape)} in the source but {list(tensor.shape)} in the destination')
        tensor.copy_(src.detach()).requires_grad_(tensor.requires_grad)

#----------------------------------------------------------------------------

@contextlib.contextmanager
def ddp_sync(module: torch.nn.Module, sync: bool) -> Iterator[None]:
    """Context manager that skips DDP's gradient all-reduce (no_sync) when sync is False, e.g. for all but the
    last of several accumulated rounds; a no-op for modules not wrapped in DistributedDataParallel."""
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f'ddp_sync: expected a torch.nn.Module, got {type(module).__name__}')
    if sync or not isinstance(module, torch.nn.parallel.DistributedDataParallel):
        yield
    else:
        with module.no_sync():
            yield

#----------------------------------------------------------------------------

def check_ddp_consistency(module: torch.nn.Module, ignore_regex: Optional[str] = None) -> None:
    """Assert that every parameter and buffer equals rank 0's copy; catches ranks drifting apart under DDP.

    NaN/Inf are mapped to finite numbers before comparing, as NaN != NaN would flag identical tensors.
    Tensors whose '<ModuleClass>.<name>' fully matches ignore_regex are skipped. Without an initialized
    process group there is only one copy, which is trivially consistent."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    for name, tensor in named_params_and_buffers(module):
        fullname = type(module).__name__ + '.' + name
        if ignore_regex is not None and re.fullmatch(ignore_regex, fullname):
            continue
        tensor = tensor.detach()
        if tensor.is_floating_point():
            tensor = nan_to_num(tensor)
        other = tensor.clone()
        torch.distributed.broadcast(tensor=other, src=0)
        if not (tensor == other).all():
            raise AssertionError(f'check_ddp_consistency: {fullname} differs from rank 0')

#----------------------------------------------------------------------------

def print_module_summary(module: torch.nn.Module, inputs: Sequence[Any], max_nesting: int = 3, skip_redundant: bool = True) -> Any:
    """Run module(*inputs) once and print a table of its submodules (down to max_nesting levels) with their
    parameter and buffer counts and output shapes/dtypes. Returns the module's outputs.

    Each tensor is counted once, in the innermost listed submodule that owns it, so the column sums equal the
    totals. skip_redundant drops rows that own no tensors and only pass on the outputs of the previous row."""
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f'print_module_summary: expected a torch.nn.Module, got {type(module).__name__}')
    if isinstance(module, torch.jit.ScriptModule):
        raise TypeError('print_module_summary: ScriptModules do not support forward hooks')
    if not isinstance(inputs, (tuple, list)):
        raise TypeError('print_module_summary: inputs must be a list or tuple of positional arguments')

    # Record (module, output tensors) for every call finishing at depth <= max_nesting, in completion order.
    entries = []
    depth = [0]
    def pre_hook(_mod, _inputs):
        depth[0] += 1
    def post_hook(mod, _inputs, outputs):
        depth[0] -= 1
        if depth[0] <= max_nesting:
            outputs = list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]
            entries.append((mod, [t for t in outputs if isinstance(t, torch.Tensor)]))
    hooks = [mod.register_forward_pre_hook(pre_hook) for mod in module.modules()]
    hooks += [mod.register_forward_hook(post_hook) for mod in module.modules()]
    try:
        outputs = module(*inputs)
    finally:
        for hook in hooks:
            hook.remove()

    # Children complete before their parents, so walking in completion order lets the innermost module claim
    # a tensor first and leaves the parent only what no child owns.
    seen = set()
    rows = []
    prev_outs = []
    for mod, outs in entries:
        params = [t for t in mod.parameters() if id(t) not in seen]
        buffers = [t for t in mod.buffers() if id(t) not in seen]
        seen.update(id(t) for t in params + buffers)
        passes_through = len(outs) == len(prev_outs) and all(a is b for a, b in zip(outs, prev_outs))
        if not (skip_redundant and not params and not buffers and passes_through):
            rows.append((mod, outs, params, buffers))
        prev_outs = outs

    # Format the table.
    names = {mod: name for name, mod in module.named_modules()}
    table = [[type(module).__name__, 'Parameters', 'Buffers', 'Output shape', 'Datatype'], ['---'] * 5]
    for mod, outs, params, buffers in rows:
        name = names.get(mod) or '<top-level>'
        num_params = sum(t.numel() for t in params)
        num_buffers = sum(t.numel() for t in buffers)
        shapes = [str(list(t.shape)) for t in outs] or ['-']
        dtypes = [str(t.dtype).split('.')[-1] for t in outs] or ['-']
        table.append([name, str(num_params) if num_params else '-', str(num_buffers) if num_buffers else '-', shapes[0], dtypes[0]])
        for k in range(1, len(outs)):
            table.append([name + f':{k}', '', '', shapes[k], dtypes[k]])
    table.append(['---'] * 5)
    table.append(['Total', str(sum(t.numel() for t in module.parameters())), str(sum(t.numel() for t in module.buffers())), '-', '-'])

    widths = [max(len(row[c]) for row in table) for c in range(5)]
    print()
    for row in table:
        print('  '.join(cell + ' ' * (width - len(cell)) for cell, width in zip(row, widths)).rstrip())
    print()
    return outputs

#----------------------------------------------------------------------------

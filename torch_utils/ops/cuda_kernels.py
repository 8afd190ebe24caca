"""Build, self-check and load the CUDA kernels behind torch_utils.ops; warn once and use the reference otherwise.

Each op with a kernel (bias_act, upfirdn2d, filtered_lrelu) compiles its .cpp/.cu/.h files from this
directory into one extension '<op>_plugin' through custom_ops.get_plugin() at its first use on a GPU, then
checks it against its PyTorch reference on small random inputs: values in float64, float32 and float16,
first- and second-order gradients in float64. A failed build or check gives one warning line saying why and
how to fix it, and the op keeps using the reference for the rest of the process. CPU tensors and
impl='ref' never get here, so they never build anything or warn."""

import os
import re
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

import dnnlib
from .. import custom_ops

#----------------------------------------------------------------------------
# op -> (sources, headers) of its extension. filtered_lrelu compiles the upfirdn2d kernel in as well:
# its resampling steps and its backward pass run on it.

SOURCES: Dict[str, Tuple[List[str], List[str]]] = {
    'bias_act':         (['bias_act.cpp', 'bias_act.cu'], ['bias_act.h']),
    'upfirdn2d':        (['upfirdn2d.cpp', 'upfirdn2d.cu'], ['upfirdn2d.h']),
    'filtered_lrelu':   (['filtered_lrelu.cpp', 'filtered_lrelu.cu', 'upfirdn2d.cu'], ['filtered_lrelu.h', 'upfirdn2d.h']),
}

SelfCheck = Callable[[Any, torch.device], Optional[str]] # (plugin, device) -> None if it agrees with the reference, else what differs.

_plugins: Dict[str, Optional[Any]] = dict() # op -> checked extension, or None after a failed build or self-check.

enabled = True # False: every op takes its reference, as with impl='ref' (tools/gpu_check.py compares networks both ways).

#----------------------------------------------------------------------------

def build(op: str) -> Any:
    """Compile (or load from the build cache) the extension of op; RuntimeError with a one-line reason on failure."""
    sources, headers = SOURCES[op]
    return custom_ops.get_plugin(module_name=f'{op}_plugin', sources=sources, headers=headers, source_dir=os.path.dirname(os.path.abspath(__file__)))

#----------------------------------------------------------------------------

def load(op: str, self_check: SelfCheck, device: torch.device) -> Optional[Any]:
    """The extension of op if it builds and passes self_check on device, else None after one warning.

    The outcome is remembered for the whole process, so the build, the check and the warning happen once."""
    if op in _plugins:
        return _plugins[op]
    plugin, why, fix = None, None, None
    try:
        plugin = build(op)
    except RuntimeError as e:
        why = str(e)
        nvcc = f'nvcc of CUDA {torch.version.cuda} (the version torch was built with)' if torch.version.cuda else 'nvcc'
        fix = f'put ninja and {nvcc} on PATH (or set CUDA_HOME), test the build with tools/check_cuda_build.sh'
    if plugin is not None:
        try:
            # The check must see plain float math with gradients on, whatever the caller's context.
            with torch.inference_mode(False), torch.enable_grad(), torch.autocast(device_type=device.type, enabled=False):
                mismatch = self_check(plugin, device)
        except Exception as e: # A kernel that cannot run here (e.g. built for another GPU) fails the check.
            mismatch = f'{type(e).__name__}: {e}'[:300]
        if mismatch is not None:
            plugin = None
            why = f'the CUDA kernel failed its self-check against the PyTorch reference ({mismatch})'
            fix = f"delete the build cache {dnnlib.make_cache_dir_path('torch_extensions')} and retry; report it with your GPU, torch and CUDA versions if it persists"
    if plugin is None:
        message = f"torch_utils.ops.{op}: {why}; using the slower PyTorch reference instead. To fix: {fix}, or pass impl='ref' to skip the kernel."
        warnings.warn(re.sub(r'\s+', ' ', message), RuntimeWarning, stacklevel=4)
    _plugins[op] = plugin
    return plugin

#----------------------------------------------------------------------------

def plugin_for(op: str, self_check: SelfCheck, x: torch.Tensor, impl: str) -> Optional[Any]:
    """The checked extension to run op on x with, or None for the reference (impl='ref', a CPU tensor, or no usable kernel)."""
    assert impl in ['ref', 'cuda']
    if not enabled or impl != 'cuda' or x.device.type != 'cuda':
        return None
    return load(op, self_check, x.device)

def loaded(op: str) -> bool:
    """Whether op's extension has been built and passed its self-check in this process."""
    return _plugins.get(op) is not None

#----------------------------------------------------------------------------

def relative_error(got: Optional[torch.Tensor], expected: Optional[torch.Tensor], floor: float = 1.0) -> float:
    """Largest absolute difference relative to max(floor, largest reference magnitude); inf for a shape or NaN mismatch."""
    if got is None or expected is None:
        return 0.0 if got is None and expected is None else float('inf')
    if got.shape != expected.shape:
        return float('inf')
    got, expected = got.detach().double(), expected.detach().double()
    if not torch.equal(torch.isnan(got), torch.isnan(expected)):
        return float('inf')
    diff = (got - expected).nan_to_num(nan=0.0).abs().max().item() if got.numel() else 0.0
    scale = max(floor, expected.nan_to_num(nan=0.0).abs().max().item() if expected.numel() else 0.0)
    return diff / scale

def _derivatives(fn: Callable[..., torch.Tensor], inputs: Sequence[torch.Tensor], dy: torch.Tensor, weights: Sequence[torch.Tensor]) -> List[Optional[torch.Tensor]]:
    """[y, dL/dinputs..., d(sum(weights * dL/dinputs))/d(inputs..., dy)] with L = sum(y * dy); unused inputs give zeros."""
    xs = [t.detach().clone().requires_grad_() for t in inputs]
    dy = dy.detach().clone().requires_grad_()
    y = fn(*xs)
    grads = torch.autograd.grad(y, xs, dy, create_graph=True, allow_unused=True)
    grads = [torch.zeros_like(x) if g is None else g for x, g in zip(xs, grads)]
    total = sum((g * w).sum() for g, w in zip(grads, weights))
    grads2 = torch.autograd.grad(total, xs + [dy], allow_unused=True) if total.requires_grad else [None] * (len(xs) + 1)
    grads2 = [torch.zeros_like(t) if g is None else g for t, g in zip(xs + [dy], grads2)]
    return [y] + list(grads) + list(grads2)

def check_against_reference(fn: Callable[..., torch.Tensor], ref: Callable[..., torch.Tensor], inputs: Sequence[torch.Tensor], device: torch.device, label: str) -> Optional[str]:
    """Compare fn(*inputs) with ref(*inputs) on device: values, gradients and second-order gradients in
    float64 (tolerance 1e-6), values in float32 and, on a GPU, float16 (tolerance 2e-2, which also covers
    TF32 convolutions in the reference). inputs are float64 CPU tensors. None if all agree, else a short
    description of the first difference."""
    gen = torch.Generator().manual_seed(len(label))
    inputs = [t.to(device) for t in inputs]
    expected = ref(*inputs)
    dy = torch.randn(expected.shape, generator=gen, dtype=torch.float64).to(device)
    weights = [torch.randn(t.shape, generator=gen, dtype=torch.float64).to(device) for t in inputs]
    names = ['output'] + [f'gradient {i}' for i in range(len(inputs))] + [f'second-order gradient {i}' for i in range(len(inputs) + 1)]
    for name, got, exp in zip(names, _derivatives(fn, inputs, dy, weights), _derivatives(ref, inputs, dy, weights)):
        err = relative_error(got, exp)
        if not err <= 1e-6:
            return f'{label}: float64 {name} off by {err:.3g}'
    for dtype in ([torch.float32, torch.float16] if device.type == 'cuda' else [torch.float32]):
        cast = [t.to(dtype) for t in inputs]
        with torch.no_grad():
            got, exp = fn(*cast), ref(*cast)
        err = relative_error(got, exp) if got.dtype == exp.dtype == dtype else float('inf')
        if not err <= 2e-2:
            return f'{label}: {str(dtype)[6:]} output off by {err:.3g}'
    return None

#----------------------------------------------------------------------------

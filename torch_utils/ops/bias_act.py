"""Fused bias + activation + gain + clamp, the nonlinearity of every StyleGAN layer.

`bias_act(x, b, act='lrelu')` computes clamp(act(x + b) * gain). Official network pickles call it by this
name and read `activation_funcs[name].def_gain` / `.def_alpha`, so names, defaults and numerics follow the
StyleGAN2-ADA op exactly. The reference below is the definition. impl='cuda' on a CUDA tensor runs the
kernel of bias_act.cu instead, built and checked against the reference at first use (cuda_kernels.py),
wrapped in autograd Functions whose backward passes call the kernel's gradient modes, so that it is
twice differentiable too. Everything else, or a kernel that fails to build or to match, takes the
reference path, which is twice differentiable through plain autograd."""

from typing import Any, Optional

import numpy as np
import torch

import dnnlib
from . import cuda_kernels

#----------------------------------------------------------------------------
# Activations. def_gain keeps the output variance near that of the input for unit-variance inputs
# (He et al.), cuda_idx is the activation's id inside the kernel, ref says which saved tensor the
# kernel's gradient needs ('x' = input, 'y' = output, '' = none), has_2nd_grad whether the second
# derivative is nonzero (relu-like activations are piecewise linear).

activation_funcs = {
    'linear':   dnnlib.EasyDict(func=lambda x, **_:         x,                                          def_alpha=0,    def_gain=1,             cuda_idx=1, ref='',  has_2nd_grad=False),
    'relu':     dnnlib.EasyDict(func=lambda x, **_:         torch.nn.functional.relu(x),                def_alpha=0,    def_gain=np.sqrt(2),    cuda_idx=2, ref='y', has_2nd_grad=False),
    'lrelu':    dnnlib.EasyDict(func=lambda x, alpha, **_:  torch.nn.functional.leaky_relu(x, alpha),   def_alpha=0.2,  def_gain=np.sqrt(2),    cuda_idx=3, ref='y', has_2nd_grad=False),
    'tanh':     dnnlib.EasyDict(func=lambda x, **_:         torch.tanh(x),                              def_alpha=0,    def_gain=1,             cuda_idx=4, ref='y', has_2nd_grad=True),
    'sigmoid':  dnnlib.EasyDict(func=lambda x, **_:         torch.sigmoid(x),                           def_alpha=0,    def_gain=1,             cuda_idx=5, ref='y', has_2nd_grad=True),
    'elu':      dnnlib.EasyDict(func=lambda x, **_:         torch.nn.functional.elu(x),                 def_alpha=0,    def_gain=1,             cuda_idx=6, ref='y', has_2nd_grad=True),
    'selu':     dnnlib.EasyDict(func=lambda x, **_:         torch.nn.functional.selu(x),                def_alpha=0,    def_gain=1,             cuda_idx=7, ref='y', has_2nd_grad=True),
    'softplus': dnnlib.EasyDict(func=lambda x, **_:         torch.nn.functional.softplus(x),            def_alpha=0,    def_gain=1,             cuda_idx=8, ref='y', has_2nd_grad=True),
    'swish':    dnnlib.EasyDict(func=lambda x, **_:         torch.sigmoid(x) * x,                       def_alpha=0,    def_gain=np.sqrt(2),    cuda_idx=9, ref='x', has_2nd_grad=True),
}

#----------------------------------------------------------------------------

def bias_act(
    x:      torch.Tensor,                   # Input tensor of any shape.
    b:      Optional[torch.Tensor] = None,  # Bias, 1D with x.shape[dim] elements, or None.
    dim:    int = 1,                        # Dimension of x that b runs along.
    act:    str = 'linear',                 # Key of activation_funcs.
    alpha:  Optional[float] = None,         # Activation parameter (lrelu slope), None = the activation's default.
    gain:   Optional[float] = None,         # Output scale, None = the activation's default.
    clamp:  Optional[float] = None,         # Clamp the output to [-clamp, clamp] (>= 0), None = no clamping.
    impl:   str = 'cuda',                   # 'cuda' = compiled kernel where one is loaded, 'ref' = always the reference.
) -> torch.Tensor:
    """Add bias b along dimension dim, apply activation act, scale by gain, clamp; same shape and dtype as x."""
    assert isinstance(x, torch.Tensor)
    assert impl in ['ref', 'cuda']
    plugin = cuda_kernels.plugin_for('bias_act', _self_check, x, impl)
    # The kernel takes a bias of x's own dtype; the reference promotes mixed dtypes like PyTorch does.
    if plugin is not None and (b is None or b.dtype == x.dtype):
        return _bias_act_cuda(plugin, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp).apply(x, b)
    return _bias_act_ref(x=x, b=b, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp)

#----------------------------------------------------------------------------

def _bias_act_ref(x: torch.Tensor, b: Optional[torch.Tensor] = None, dim: int = 1, act: str = 'linear', alpha: Optional[float] = None, gain: Optional[float] = None, clamp: Optional[float] = None) -> torch.Tensor:
    """Reference bias_act() in plain PyTorch ops."""
    assert isinstance(x, torch.Tensor)
    assert clamp is None or clamp >= 0
    spec = activation_funcs[act]
    alpha = float(alpha if alpha is not None else spec.def_alpha)
    gain = float(gain if gain is not None else spec.def_gain)
    clamp = float(clamp if clamp is not None else -1)

    if b is not None:
        assert isinstance(b, torch.Tensor) and b.ndim == 1
        assert 0 <= dim < x.ndim
        assert b.shape[0] == x.shape[dim]
        x = x + b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])

    x = spec.func(x, alpha=alpha)
    if gain != 1: # Skipping the multiply keeps 'linear' an exact identity.
        x = x * gain
    if clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x

#----------------------------------------------------------------------------

_bias_act_cuda_cache = dict()

def _bias_act_cuda(plugin: Any, dim: int = 1, act: str = 'linear', alpha: Optional[float] = None, gain: Optional[float] = None, clamp: Optional[float] = None) -> type:
    """autograd.Function class running bias_act() on the extension plugin, twice differentiable."""
    assert clamp is None or clamp >= 0
    spec = activation_funcs[act]
    alpha = float(alpha if alpha is not None else spec.def_alpha)
    gain = float(gain if gain is not None else spec.def_gain)
    clamp = float(clamp if clamp is not None else -1)
    key = (plugin, dim, act, alpha, gain, clamp)
    if key in _bias_act_cuda_cache:
        return _bias_act_cuda_cache[key]

    def run(x, b, dy, mode): # mode 0: the op, 1: dy times its derivative, 2: dy times its second derivative.
        empty = x.new_empty([0])
        return plugin.bias_act(x, empty if b is None else b, empty if dy is None else dy, mode, spec.cuda_idx, alpha, gain, clamp, dim)

    def sum_to_bias(t):
        return t.sum([i for i in range(t.ndim) if i != dim])

    # Both Functions save x and b and let the kernel recompute x + b, so every activation and the clamp
    # mask get their derivatives from the same saved tensors.
    class BiasActCuda(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, b):
            ctx.save_for_backward(x, b)
            return run(x, b, None, 0)

        @staticmethod
        def backward(ctx, dy):
            x, b = ctx.saved_tensors
            dx = BiasActCudaGrad.apply(dy, x, b)
            db = sum_to_bias(dx) if b is not None and ctx.needs_input_grad[1] else None
            return dx, db

    # dx = dy * g'(x + b) as a Function of (dy, x, b): linear in dy, and through g'' in x and b.
    class BiasActCudaGrad(torch.autograd.Function):
        @staticmethod
        def forward(ctx, dy, x, b):
            ctx.save_for_backward(dy, x, b)
            return run(x, b, dy, 1)

        @staticmethod
        def backward(ctx, d_dx):
            dy, x, b = ctx.saved_tensors
            d_dy = BiasActCudaGrad.apply(d_dx, x, b) if ctx.needs_input_grad[0] else None
            d_x = d_b = None
            if spec.has_2nd_grad and (ctx.needs_input_grad[1] or ctx.needs_input_grad[2]):
                d_x = run(x, b, d_dx * dy, 2)
                d_b = sum_to_bias(d_x) if b is not None and ctx.needs_input_grad[2] else None
            return d_dy, d_x, d_b

    _bias_act_cuda_cache[key] = BiasActCuda
    return BiasActCuda

#----------------------------------------------------------------------------

def _self_check(plugin: Any, device: torch.device) -> Optional[str]:
    """Every activation with default and explicit parameters, with and without bias, in a channels_last layout."""
    gen = torch.Generator().manual_seed(1)
    randn = lambda *shape: torch.randn(shape, generator=gen, dtype=torch.float64) * 2
    for act in activation_funcs:
        for dim, alpha, gain, clamp in [(1, None, None, None), (2, 0.3, 0.8, 0.7)]:
            fn = _bias_act_cuda(plugin, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp).apply
            ref = lambda x, b, dim=dim, alpha=alpha, gain=gain, clamp=clamp: _bias_act_ref(x, b, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp)
            mismatch = cuda_kernels.check_against_reference(fn, ref, [randn(3, 4, 5), randn(4 if dim == 1 else 5)], device, f'act={act} dim={dim}')
            if mismatch is None:
                mismatch = cuda_kernels.check_against_reference(lambda x: fn(x, None), lambda x: ref(x, None), [randn(2, 3, 4)], device, f'act={act} no bias')
            if mismatch is not None:
                return mismatch
    channels_last = lambda f: lambda x, b: f(x.contiguous(memory_format=torch.channels_last), b) # The kernel runs in memory order.
    fn = channels_last(_bias_act_cuda(plugin, dim=1, act='lrelu', clamp=1.0).apply)
    ref = channels_last(lambda x, b: _bias_act_ref(x, b, dim=1, act='lrelu', clamp=1.0))
    return cuda_kernels.check_against_reference(fn, ref, [randn(2, 3, 4, 5), randn(3)], device, 'channels_last')

#----------------------------------------------------------------------------

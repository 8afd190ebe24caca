"""Fused bias + activation + gain + clamp, the nonlinearity of every StyleGAN layer.

`bias_act(x, b, act='lrelu')` computes clamp(act(x + b) * gain). Official network pickles call it by this
name and read `activation_funcs[name].def_gain` / `.def_alpha`, so names, defaults and numerics follow the
StyleGAN2-ADA op exactly. The reference below is the definition; a compiled CUDA kernel (impl='cuda')
must reproduce it, and runs only where one is loaded. Without one, every call takes the reference path,
which is twice differentiable through plain autograd."""

from typing import Optional

import numpy as np
import torch

import dnnlib

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
    # impl='cuda' is the slot for the compiled kernel; none is loaded in this version, so both values
    # run the reference, which is the numerical definition the kernel has to match.
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

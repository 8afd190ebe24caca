"""Fused multiply-add a * b + c with broadcasting: one addcmul kernel and one output buffer.

The modulated convolution of StyleGAN2 calls fma(x, dcoefs, noise) by this name from official pickles.
The backward pass sums each gradient back to the shape of its operand, so any broadcastable a, b, c
work, and it is made of differentiable ops, so gradients of gradients work too."""

import torch

#----------------------------------------------------------------------------

def fma(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """a * b + c, broadcasting all three operands."""
    return _FusedMultiplyAdd.apply(a, b, c)

#----------------------------------------------------------------------------

class _FusedMultiplyAdd(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, c):
        out = torch.addcmul(c, a, b)
        ctx.save_for_backward(a, b)
        ctx.c_shape = c.shape
        return out

    @staticmethod
    def backward(ctx, dout):
        a, b = ctx.saved_tensors
        da = db = dc = None
        if ctx.needs_input_grad[0]:
            da = _unbroadcast(dout * b, a.shape)
        if ctx.needs_input_grad[1]:
            db = _unbroadcast(dout * a, b.shape)
        if ctx.needs_input_grad[2]:
            dc = _unbroadcast(dout, ctx.c_shape)
        return da, db, dc

#----------------------------------------------------------------------------

def _unbroadcast(x: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Sum a gradient of the broadcast shape back to the shape of the operand that was broadcast."""
    extra_dims = x.ndim - len(shape)
    assert extra_dims >= 0
    dims = [i for i in range(x.ndim) if i < extra_dims or (shape[i - extra_dims] == 1 and x.shape[i] != 1)]
    if len(dims):
        x = x.sum(dim=dims, keepdim=True)
    x = x.reshape(shape)
    return x

#----------------------------------------------------------------------------

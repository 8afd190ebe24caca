"""conv2d / conv_transpose2d with arbitrarily high-order gradients and an opt-out for weight gradients.

R1 and path-length regularization differentiate a gradient of the network (double backward). Inside
`with no_weight_gradients():` the backward pass of these convolutions skips the weight gradient, which
the regularizers' inner torch.autograd.grad() calls never use; the input gradient they do use stays
differentiable w.r.t. both input and weight, so the outer backward still reaches the weights.

Set `enabled = True` (the training loop does) to route through the custom autograd function that
honors no_weight_gradients(); otherwise these are the plain torch.nn.functional ops, whose autograd
already skips weight gradients that torch.autograd.grad() does not ask for. Both give the same numbers
on every device. Names follow StyleGAN2-ADA because official network pickles call them."""

import contextlib
from typing import Iterator, List, Optional, Union

import torch

#----------------------------------------------------------------------------

enabled = False                     # Use the custom autograd function (honors no_weight_gradients())?
weight_gradients_disabled = False   # Set by no_weight_gradients(), read during the backward pass.

#----------------------------------------------------------------------------

@contextlib.contextmanager
def no_weight_gradients(disable: bool = True) -> Iterator[None]:
    """Within the block, backward passes through these ops give no weight gradient (when `enabled`)."""
    global weight_gradients_disabled
    old = weight_gradients_disabled
    if disable:
        weight_gradients_disabled = True
    try:
        yield
    finally:
        weight_gradients_disabled = old

#----------------------------------------------------------------------------

IntPair = Union[int, List[int], tuple]

def conv2d(input: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None, stride: IntPair = 1, padding: IntPair = 0, dilation: IntPair = 1, groups: int = 1) -> torch.Tensor:
    """Same as torch.nn.functional.conv2d (numeric padding only)."""
    if enabled:
        return _conv2d_gradfix(transpose=False, stride=stride, padding=padding, output_padding=0, dilation=dilation, groups=groups).apply(input, weight, bias)
    return torch.nn.functional.conv2d(input=input, weight=weight, bias=bias, stride=stride, padding=padding, dilation=dilation, groups=groups)

def conv_transpose2d(input: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None, stride: IntPair = 1, padding: IntPair = 0, output_padding: IntPair = 0, groups: int = 1, dilation: IntPair = 1) -> torch.Tensor:
    """Same as torch.nn.functional.conv_transpose2d."""
    if enabled:
        return _conv2d_gradfix(transpose=True, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=groups).apply(input, weight, bias)
    return torch.nn.functional.conv_transpose2d(input=input, weight=weight, bias=bias, stride=stride, padding=padding, output_padding=output_padding, groups=groups, dilation=dilation)

#----------------------------------------------------------------------------

def _pair(value: IntPair) -> List[int]:
    pair = [int(v) for v in value] if isinstance(value, (list, tuple)) else [int(value)] * 2
    assert len(pair) == 2
    return pair

_conv2d_gradfix_cache = dict()

def _conv2d_gradfix(transpose: bool, stride: IntPair, padding: IntPair, output_padding: IntPair, dilation: IntPair, groups: int) -> type:
    """The autograd function for one convolution configuration (cached, so every call site reuses the class)."""
    stride, padding, output_padding, dilation = _pair(stride), _pair(padding), _pair(output_padding), _pair(dilation)
    key = (transpose, tuple(stride), tuple(padding), tuple(output_padding), tuple(dilation), groups)
    if key in _conv2d_gradfix_cache:
        return _conv2d_gradfix_cache[key]
    conv_args = dict(stride=stride, padding=padding, dilation=dilation, transposed=transpose, output_padding=output_padding, groups=groups)

    class Conv2d(torch.autograd.Function):
        @staticmethod
        def forward(ctx, input, weight, bias):
            ctx.save_for_backward(input, weight)
            ctx.bias_shape = None if bias is None else list(bias.shape)
            return torch.ops.aten.convolution(input, weight, bias, **conv_args)

        @staticmethod
        def backward(ctx, grad_output):
            input, weight = ctx.saved_tensors
            # The flag is read here, not in forward(): the regularizers run the forward pass outside the
            # with-block and only their inner backward inside it.
            mask = [ctx.needs_input_grad[0], ctx.needs_input_grad[1] and not weight_gradients_disabled, ctx.needs_input_grad[2]]
            if not any(mask):
                return None, None, None
            # aten's convolution_backward is itself differentiable (w.r.t. grad_output, input and weight),
            # which is what makes gradients of these gradients work.
            grads = torch.ops.aten.convolution_backward(grad_output, input, weight, ctx.bias_shape, output_mask=mask, **conv_args)
            return tuple(g if m else None for g, m in zip(grads, mask))

    _conv2d_gradfix_cache[key] = Conv2d
    return Conv2d

#----------------------------------------------------------------------------

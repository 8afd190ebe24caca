"""fma: a * b + c for broadcastable operands, gradients summed back to each operand's shape (compared with
autograd of the unfused expression and with finite differences), and gradients of gradients."""

import pytest
import torch

from torch_utils.ops import fma

#----------------------------------------------------------------------------

SHAPES = [ # (a, b, c)
    ([2, 3, 4, 4], [2, 3, 1, 1], [2, 3, 4, 4]),   # StyleGAN2 demodulation: x * dcoefs + noise
    ([2, 3, 4, 4], [2, 3, 1, 1], [1, 1, 4, 4]),   # noise broadcast over batch and channels
    ([3, 1, 4], [2, 1, 5, 1], [5, 4]),            # every operand broadcast, different ranks
    ([1], [2, 3], [3, 1, 1]),
]

@pytest.mark.parametrize('sa,sb,sc', SHAPES)
def test_forward_and_grads_match_unfused(sa, sb, sc):
    g = torch.Generator().manual_seed(0)
    a, b, c = [torch.randn(s, generator=g, dtype=torch.float64, requires_grad=True) for s in [sa, sb, sc]]
    y = fma.fma(a, b, c)
    y_ref = a * b + c
    assert y.shape == y_ref.shape
    torch.testing.assert_close(y, y_ref)
    go = torch.randn(y.shape, generator=g, dtype=torch.float64)
    grads = torch.autograd.grad(y, [a, b, c], go)
    grads_ref = torch.autograd.grad(y_ref, [a, b, c], go)
    for grad, grad_ref, s in zip(grads, grads_ref, [sa, sb, sc]):
        assert list(grad.shape) == s
        torch.testing.assert_close(grad, grad_ref)

@pytest.mark.parametrize('sa,sb,sc', SHAPES[1:3])
def test_gradcheck_and_gradgradcheck(sa, sb, sc):
    g = torch.Generator().manual_seed(1)
    a, b, c = [torch.randn([min(d, 2) for d in s], generator=g, dtype=torch.float64, requires_grad=True) for s in [sa, sb, sc]]
    assert torch.autograd.gradcheck(fma.fma, [a, b, c])
    assert torch.autograd.gradgradcheck(fma.fma, [a, b, c])

def test_gradient_only_for_operands_that_need_it():
    a = torch.randn([2, 3], requires_grad=True)
    b = torch.randn([3])
    c = torch.randn([2, 1])
    fma.fma(a, b, c).sum().backward()
    torch.testing.assert_close(a.grad, b.expand(2, 3))
    assert b.grad is None and c.grad is None

#----------------------------------------------------------------------------

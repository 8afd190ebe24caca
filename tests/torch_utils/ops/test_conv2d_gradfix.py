"""conv2d_gradfix: same results and gradients as torch.nn.functional, gradients of gradients (gradgradcheck),
no weight gradient inside no_weight_gradients(), and an R1-style penalty that still reaches the weights."""

import pytest
import torch

from torch_utils.ops import conv2d_gradfix

#----------------------------------------------------------------------------

@pytest.fixture(params=[False, True], ids=['native', 'custom'])
def enabled(request, monkeypatch):
    monkeypatch.setattr(conv2d_gradfix, 'enabled', request.param)
    return request.param

CONV_ARGS = [
    dict(stride=1, padding=0, dilation=1, groups=1),
    dict(stride=2, padding=1, dilation=1, groups=2),
    dict(stride=[1, 2], padding=[2, 0], dilation=[2, 1], groups=1),
]

TRANSPOSE_ARGS = [
    dict(stride=1, padding=0, output_padding=0, groups=1, dilation=1),
    dict(stride=2, padding=1, output_padding=1, groups=2, dilation=1),
    dict(stride=[2, 3], padding=[0, 1], output_padding=[1, 2], groups=1, dilation=1),
]

#----------------------------------------------------------------------------

# conv2d takes weights [out, in / groups, kh, kw], conv_transpose2d [in, out / groups, kh, kw].
@pytest.mark.parametrize('op,ref_op,x_shape,w_shape,args',
    [(conv2d_gradfix.conv2d, torch.nn.functional.conv2d, [2, 4, 7, 6], [6, 4 // args['groups'], 3, 3], args) for args in CONV_ARGS] +
    [(conv2d_gradfix.conv_transpose2d, torch.nn.functional.conv_transpose2d, [2, 4, 4, 5], [4, 6 // args['groups'], 3, 3], args) for args in TRANSPOSE_ARGS])
def test_matches_torch(enabled, op, ref_op, x_shape, w_shape, args):
    x = torch.randn(x_shape, dtype=torch.float64, requires_grad=True)
    w = torch.randn(w_shape, dtype=torch.float64, requires_grad=True)
    b = torch.randn([6], dtype=torch.float64, requires_grad=True)
    y = op(x, w, b, **args)
    y_ref = ref_op(x, w, b, **args)
    torch.testing.assert_close(y, y_ref, rtol=0, atol=0)
    go = torch.randn_like(y)
    grads = torch.autograd.grad(y, [x, w, b], go)
    grads_ref = torch.autograd.grad(y_ref, [x, w, b], go)
    for g, g_ref in zip(grads, grads_ref):
        torch.testing.assert_close(g, g_ref)

#----------------------------------------------------------------------------

def test_gradcheck_and_gradgradcheck_conv2d(enabled):
    x = torch.randn([1, 2, 4, 3], dtype=torch.float64, requires_grad=True)
    w = torch.randn([2, 1, 2, 2], dtype=torch.float64, requires_grad=True)
    b = torch.randn([2], dtype=torch.float64, requires_grad=True)
    fn = lambda x, w, b: conv2d_gradfix.conv2d(x, w, b, stride=[1, 2], padding=1, groups=2)
    assert torch.autograd.gradcheck(fn, [x, w, b])
    assert torch.autograd.gradgradcheck(fn, [x, w, b])

def test_gradcheck_and_gradgradcheck_conv_transpose2d(enabled):
    x = torch.randn([1, 2, 2, 3], dtype=torch.float64, requires_grad=True)
    w = torch.randn([2, 1, 2, 2], dtype=torch.float64, requires_grad=True)
    b = torch.randn([1], dtype=torch.float64, requires_grad=True)
    fn = lambda x, w, b: conv2d_gradfix.conv_transpose2d(x, w, b, stride=2, padding=[0, 1], output_padding=1)
    assert torch.autograd.gradcheck(fn, [x, w, b])
    assert torch.autograd.gradgradcheck(fn, [x, w, b])

#----------------------------------------------------------------------------

def test_no_weight_gradients(monkeypatch):
    monkeypatch.setattr(conv2d_gradfix, 'enabled', True)
    x = torch.randn([2, 3, 5, 5], requires_grad=True)
    w = torch.randn([4, 3, 3, 3], requires_grad=True)
    b = torch.randn([4], requires_grad=True)
    expected_x_grad = torch.autograd.grad(torch.nn.functional.conv2d(x, w, b, padding=1).square().sum(), x)[0]

    y = conv2d_gradfix.conv2d(x, w, b, padding=1) # Forward outside the block, as in the regularizers.
    with conv2d_gradfix.no_weight_gradients():
        assert conv2d_gradfix.weight_gradients_disabled
        y.square().sum().backward()
    assert not conv2d_gradfix.weight_gradients_disabled
    assert w.grad is None
    assert b.grad is not None
    torch.testing.assert_close(x.grad, expected_x_grad)

    with conv2d_gradfix.no_weight_gradients(disable=False):
        conv2d_gradfix.conv_transpose2d(x, w.transpose(0, 1), padding=1).sum().backward()
    assert w.grad is not None

def test_no_weight_gradients_restores_flag_after_error():
    with pytest.raises(RuntimeError):
        with conv2d_gradfix.no_weight_gradients():
            raise RuntimeError('boom')
    assert not conv2d_gradfix.weight_gradients_disabled

def test_r1_penalty_reaches_weights(monkeypatch):
    """Inner gradient w.r.t. the input inside no_weight_gradients(), outer backward outside: the weights
    must get the same gradient as with plain torch convolutions."""
    torch.manual_seed(0)
    x = torch.randn([2, 2, 5, 5], dtype=torch.float64)
    w1 = torch.randn([3, 2, 3, 3], dtype=torch.float64, requires_grad=True)
    w2 = torch.randn([1, 3, 3, 3], dtype=torch.float64, requires_grad=True)

    def r1_weight_grads(conv, use_block):
        img = x.detach().requires_grad_(True)
        logits = conv(torch.tanh(conv(img, w1, padding=1)), w2)
        with conv2d_gradfix.no_weight_gradients(use_block):
            grads = torch.autograd.grad(outputs=[logits.sum()], inputs=[img], create_graph=True)[0]
        return torch.autograd.grad(grads.square().sum(), [w1, w2])

    expected = r1_weight_grads(torch.nn.functional.conv2d, use_block=False)
    monkeypatch.setattr(conv2d_gradfix, 'enabled', True)
    for got, ref in zip(r1_weight_grads(conv2d_gradfix.conv2d, use_block=True), expected):
        torch.testing.assert_close(got, ref)
        assert ref.abs().max() > 0

#----------------------------------------------------------------------------

"""Routing of impl='cuda' to the CUDA kernels and the fallback to the reference.

On CPU: CPU tensors and impl='ref' never build or warn; a failed build warns once in one line and leaves the
reference numbers; the self-check accepts a correct kernel and rejects a wrong one. The kernels are stood
in for by fake extensions that implement each extension's contract in PyTorch, which also runs the
autograd wrappers (gradient modes, transposed padding, branch masks) and their double backward on CPU.
On a GPU: the real kernels build, pass their self-check and match the reference."""

import re
import types
import warnings

import numpy as np
import pytest
import torch

from torch_utils import custom_ops
from torch_utils.ops import bias_act
from torch_utils.ops import cuda_kernels
from torch_utils.ops import filtered_lrelu
from torch_utils.ops import upfirdn2d

#----------------------------------------------------------------------------
# Fake extensions: each extension's contract (see the .h files) in PyTorch. error != 0 makes one part wrong.

class FakeBiasAct:
    def __init__(self, error: float = 0):
        self.error = error # Added to the second derivative.
        self.calls = 0

    def bias_act(self, x, b, dy, mode, act_idx, alpha, gain, clamp, dim):
        self.calls += 1
        act = next(name for name, spec in bias_act.activation_funcs.items() if spec.cuda_idx == act_idx)
        s = x if b.numel() == 0 else x + b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])
        s = s.detach().requires_grad_()
        with torch.enable_grad(): # Derivatives of the elementwise reference by autograd.
            y = bias_act._bias_act_ref(s, act=act, alpha=alpha, gain=gain, clamp=(clamp if clamp >= 0 else None))
            if mode == 0:
                return y.detach()
            d, = torch.autograd.grad(y.sum(), s, create_graph=True)
            if mode == 2:
                d = torch.autograd.grad(d.sum(), s, allow_unused=True)[0] if d.requires_grad else None
                d = (torch.zeros_like(s) if d is None else d) + self.error
        return (dy * d).detach()

class FakeUpfirdn2d:
    def __init__(self, error: float = 0):
        self.error = error # Added to every output.
        self.calls = 0

    def upfirdn2d(self, x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip, gain):
        self.calls += 1
        y = upfirdn2d._upfirdn2d_ref(x, f, up=[upx, upy], down=[downx, downy], padding=[padx0, padx1, pady0, pady1], flip_filter=flip, gain=gain)
        return y + self.error

class FakeFilteredLRelu(FakeUpfirdn2d):
    def __init__(self, error: float = 0):
        super().__init__()
        self.mask_error = error # Added to the negative branch's gradient factor.

    def filtered_lrelu_up(self, x, fu, b, up, padx0, padx1, pady0, pady1, gain, slope, clamp, flip):
        self.calls += 1
        x = x if b.numel() == 0 else x + b.reshape(1, -1, 1, 1)
        t = upfirdn2d._upfirdn2d_ref(x, fu, up=up, padding=[padx0, padx1, pady0, pady1], flip_filter=flip, gain=up ** 2)
        states = (t > 0).to(torch.uint8)
        t = torch.where(t > 0, t, t * slope) * gain
        if clamp >= 0:
            states[(t < -clamp) | (t > clamp)] = 2
            t = t.clamp(-clamp, clamp)
        return t, states

    def lrelu_mask(self, g, states, gain, slope):
        factors = torch.tensor([gain * slope + self.mask_error, gain, 0], dtype=g.dtype, device=g.device)
        return g * factors[states.long()]

FAKES = {'bias_act': FakeBiasAct, 'upfirdn2d': FakeUpfirdn2d, 'filtered_lrelu': FakeFilteredLRelu}
CHECKS = {'bias_act': bias_act._self_check, 'upfirdn2d': upfirdn2d._self_check, 'filtered_lrelu': filtered_lrelu._self_check}

#----------------------------------------------------------------------------
# One call per op, with impl as given; gradients flow to x (and b where there is one).

def _call(op, x, b, impl):
    if op == 'bias_act':
        return bias_act.bias_act(x, b, act='lrelu', clamp=1.5, impl=impl)
    if op == 'upfirdn2d':
        return upfirdn2d.upfirdn2d(x, upfirdn2d.setup_filter([1, 3, 3, 1]), up=2, down=1, padding=[2, 1, 1, 2], impl=impl)
    f = upfirdn2d.setup_filter(np.arange(1, 9), separable=True)
    return filtered_lrelu.filtered_lrelu(x, f, f, b, up=2, down=2, padding=[7, 6, 6, 7], clamp=1.0, impl=impl)

def _inputs(seed):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn([2, 3, 5, 6], generator=gen, dtype=torch.float64), torch.randn([3], generator=gen, dtype=torch.float64)

@pytest.fixture
def fresh_state(monkeypatch):
    """Forget loaded/failed kernels, and pretend every tensor is on a GPU so impl='cuda' reaches the loader."""
    monkeypatch.setattr(cuda_kernels, '_plugins', dict())
    monkeypatch.setattr(cuda_kernels, 'plugin_for', lambda op, self_check, x, impl: cuda_kernels.load(op, self_check, x.device) if impl == 'cuda' else None)

def _one_line_warnings(record):
    messages = [str(w.message) for w in record if issubclass(w.category, RuntimeWarning)]
    assert all('\n' not in m for m in messages)
    return messages

#----------------------------------------------------------------------------

@pytest.mark.parametrize('op', list(FAKES))
def test_cpu_and_ref_never_load_a_kernel(op, monkeypatch):
    def no_load(*args, **kwargs):
        raise AssertionError('the loader must not run for CPU tensors or impl="ref"')
    monkeypatch.setattr(cuda_kernels, 'load', no_load)
    x, b = _inputs(0)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert torch.equal(_call(op, x, b, impl='cuda'), _call(op, x, b, impl='ref'))

@pytest.mark.parametrize('enabled', [True, False])
def test_disabled_kernels_take_the_reference(monkeypatch, enabled):
    # cuda_kernels.enabled = False (tools/gpu_check.py's reference pass) routes even CUDA tensors to the reference.
    loads = []
    monkeypatch.setattr(cuda_kernels, 'load', lambda op, self_check, device: loads.append(op) or 'plugin')
    monkeypatch.setattr(cuda_kernels, 'enabled', enabled)
    on_gpu = types.SimpleNamespace(device=torch.device('cuda', 0))
    assert cuda_kernels.plugin_for('bias_act', None, on_gpu, impl='cuda') == ('plugin' if enabled else None)
    assert loads == (['bias_act'] if enabled else [])

@pytest.mark.parametrize('op', list(FAKES))
def test_failed_build_warns_once_and_uses_reference(op, monkeypatch, fresh_state):
    calls = []
    def failing_get_plugin(module_name, **kwargs):
        calls.append(module_name)
        raise RuntimeError(f'Cannot build PyTorch plugin "{module_name}": nvcc not found')
    monkeypatch.setattr(custom_ops, 'get_plugin', failing_get_plugin)
    x, b = _inputs(1)
    expected = _call(op, x, b, impl='ref')
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter('always')
        first = _call(op, x, b, impl='cuda')
        second = _call(op, x, b, impl='cuda')
    messages = _one_line_warnings(record)
    assert len(messages) == 1 and calls == [f'{op}_plugin']
    assert re.match(rf'torch_utils\.ops\.{op}: Cannot build .*nvcc not found; using the slower PyTorch reference instead\. To fix: .*ninja.*nvcc.*tools/check_cuda_build\.sh.*impl=\'ref\'', messages[0])
    assert torch.equal(first, expected) and torch.equal(second, expected)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert torch.equal(_call(op, x, b, impl='ref'), expected) # impl='ref' stays silent too.

@pytest.mark.parametrize('op', list(FAKES))
def test_correct_kernel_passes_self_check_and_is_used(op, monkeypatch, fresh_state):
    fake = FAKES[op]()
    monkeypatch.setattr(custom_ops, 'get_plugin', lambda module_name, **kwargs: fake)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert cuda_kernels.load(op, CHECKS[op], torch.device('cpu')) is fake

    # The autograd wrappers around the kernel give the reference's values, gradients and second-order gradients.
    fake.calls = 0
    x, b = _inputs(2)
    results = []
    for impl in ['cuda', 'ref']:
        xs = [x.clone().requires_grad_(), b.clone().requires_grad_()]
        y = _call(op, *xs, impl=impl)
        dy = torch.linspace(-1, 1, y.numel(), dtype=y.dtype).reshape(y.shape).requires_grad_()
        grads = torch.autograd.grad(y, xs, dy, create_graph=True, allow_unused=True)
        total = sum((g * g).sum() for g in grads if g is not None)
        grads2 = torch.autograd.grad(total, xs + [dy], allow_unused=True)
        results.append([y] + [torch.zeros_like(t) if g is None else g for t, g in zip(xs + xs + [dy], list(grads) + list(grads2))])
    assert fake.calls > 0 # The fake kernel really ran.
    for got, expected in zip(*results):
        torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9)

@pytest.mark.parametrize('op', list(FAKES))
def test_wrong_kernel_fails_self_check(op, monkeypatch, fresh_state):
    monkeypatch.setattr(custom_ops, 'get_plugin', lambda module_name, **kwargs: FAKES[op](error=1e-3))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter('always')
        assert cuda_kernels.load(op, CHECKS[op], torch.device('cpu')) is None
        assert cuda_kernels.load(op, CHECKS[op], torch.device('cpu')) is None
    messages = _one_line_warnings(record)
    assert len(messages) == 1
    assert f'torch_utils.ops.{op}: the CUDA kernel failed its self-check against the PyTorch reference' in messages[0] and "impl='ref'" in messages[0]
    x, b = _inputs(3)
    assert torch.equal(_call(op, x, b, impl='cuda'), _call(op, x, b, impl='ref'))

def test_self_check_reports_what_differs():
    # Off in the second derivative only: values and first-order gradients agree, so the message names the second order.
    mismatch = bias_act._self_check(FakeBiasAct(error=1e-3), torch.device('cpu'))
    assert mismatch is not None and 'second-order gradient' in mismatch and 'act=' in mismatch
    assert upfirdn2d._self_check(FakeUpfirdn2d(), torch.device('cpu')) is None

#----------------------------------------------------------------------------

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU: the kernels are built and checked at first use there (build-only check without a GPU: tools/check_cuda_build.sh)')

@needs_gpu
@pytest.mark.parametrize('op', list(FAKES))
def test_gpu_kernel_builds_and_passes_self_check(op, monkeypatch):
    monkeypatch.setattr(cuda_kernels, '_plugins', dict())
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert cuda_kernels.load(op, CHECKS[op], torch.device('cuda')) is not None

@needs_gpu
@pytest.mark.parametrize('op', list(FAKES))
def test_gpu_kernel_matches_reference(op, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, 'allow_tf32', False) # Full float32 convolutions in the reference.
    x, b = _inputs(4)
    x, b = x.cuda(), b.cuda()
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        for dtype, tol in [(torch.float64, 1e-9), (torch.float32, 1e-4)]:
            torch.testing.assert_close(_call(op, x.to(dtype), b.to(dtype), impl='cuda'), _call(op, x.to(dtype), b.to(dtype), impl='ref'), rtol=tol, atol=tol)
        xs = [x[:1, :2, :3, :4].clone().requires_grad_(), b[:2].clone().requires_grad_()]
        assert torch.autograd.gradcheck(lambda x, b: _call(op, x, b, impl='cuda'), xs)
        assert torch.autograd.gradgradcheck(lambda x, b: _call(op, x, b, impl='cuda'), xs)

#----------------------------------------------------------------------------

"""bias_act: every activation against its closed form in NumPy (bias, alpha, gain, clamp), the record
fields official pickles read, gradients by finite differences (routing of impl='cuda': test_cuda_ops.py)."""

import numpy as np
import pytest
import torch

import dnnlib
from torch_utils.ops import bias_act

#----------------------------------------------------------------------------

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

def _np_act(x: np.ndarray, act: str, alpha: float) -> np.ndarray:
    sigmoid = 1 / (1 + np.exp(-x))
    return {
        'linear':   x,
        'relu':     np.maximum(x, 0),
        'lrelu':    np.where(x >= 0, x, alpha * x),
        'tanh':     np.tanh(x),
        'sigmoid':  sigmoid,
        'elu':      np.where(x > 0, x, np.expm1(x)),
        'selu':     SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(x)),
        'softplus': np.log1p(np.exp(x)),
        'swish':    x * sigmoid,
    }[act]

EXPECTED_DEFAULTS = { # (def_alpha, def_gain) as in StyleGAN2-ADA; official pickles depend on them.
    'linear': (0, 1), 'relu': (0, np.sqrt(2)), 'lrelu': (0.2, np.sqrt(2)), 'tanh': (0, 1), 'sigmoid': (0, 1),
    'elu': (0, 1), 'selu': (0, 1), 'softplus': (0, 1), 'swish': (0, np.sqrt(2)),
}

#----------------------------------------------------------------------------

def test_activation_records():
    assert set(bias_act.activation_funcs) == set(EXPECTED_DEFAULTS)
    for name, (def_alpha, def_gain) in EXPECTED_DEFAULTS.items():
        spec = bias_act.activation_funcs[name]
        assert isinstance(spec, dnnlib.EasyDict)
        assert set(spec) == {'func', 'def_alpha', 'def_gain', 'cuda_idx', 'ref', 'has_2nd_grad'}
        assert spec.def_alpha == def_alpha
        assert np.isclose(spec.def_gain, def_gain)
        assert spec.ref in ['', 'x', 'y']
        assert spec.has_2nd_grad == (name not in ['linear', 'relu', 'lrelu'])
    assert sorted(spec.cuda_idx for spec in bias_act.activation_funcs.values()) == list(range(1, 10))

#----------------------------------------------------------------------------

@pytest.mark.parametrize('act', list(EXPECTED_DEFAULTS))
def test_default_params_match_numpy(act):
    rng = np.random.default_rng(0)
    x = rng.normal(size=[2, 3, 4, 5]) * 2
    b = rng.normal(size=[3])
    def_alpha, def_gain = EXPECTED_DEFAULTS[act]
    expected = _np_act(x + b.reshape(1, 3, 1, 1), act, def_alpha) * def_gain
    y = bias_act.bias_act(torch.tensor(x), torch.tensor(b), act=act)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12, atol=1e-12)

@pytest.mark.parametrize('act', list(EXPECTED_DEFAULTS))
def test_explicit_params_match_numpy(act):
    rng = np.random.default_rng(1)
    x = rng.normal(size=[3, 4, 5]) * 3
    b = rng.normal(size=[4])
    alpha, gain, clamp = 0.3, 1.7, 1.5
    expected = np.clip(_np_act(x + b.reshape(1, 4, 1), act, alpha) * gain, -clamp, clamp)
    y = bias_act.bias_act(torch.tensor(x), torch.tensor(b), dim=1, act=act, alpha=alpha, gain=gain, clamp=clamp)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12, atol=1e-12)
    assert (y.abs() <= clamp).all() and (y.abs() == clamp).any() # The clamp actually bit.

def test_bias_along_other_dim_and_no_bias():
    rng = np.random.default_rng(2)
    x = rng.normal(size=[2, 3, 4])
    b = rng.normal(size=[4])
    y = bias_act.bias_act(torch.tensor(x), torch.tensor(b), dim=2, act='lrelu')
    np.testing.assert_allclose(y.numpy(), _np_act(x + b, 'lrelu', 0.2) * np.sqrt(2), rtol=1e-12)
    y = bias_act.bias_act(torch.tensor(x), act='lrelu', gain=1, clamp=0.5)
    np.testing.assert_allclose(y.numpy(), np.clip(_np_act(x, 'lrelu', 0.2), -0.5, 0.5), rtol=1e-12)
    y = bias_act.bias_act(torch.tensor(x))
    assert torch.equal(y, torch.tensor(x)) # 'linear' without bias is the identity.

def test_dtype_preserved():
    x = torch.randn([2, 3, 4, 4])
    b = torch.randn([3])
    assert bias_act.bias_act(x, b, act='lrelu').dtype == torch.float32
    assert bias_act.bias_act(x.double(), b.double(), act='lrelu').dtype == torch.float64

#----------------------------------------------------------------------------

def _away_from_kinks(shape, seed):
    """Random float64 values at least 0.05 away from 0, where relu-like activations have their kink."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    return x.sign() * (x.abs() + 0.05)

@pytest.mark.parametrize('act', list(EXPECTED_DEFAULTS))
def test_gradcheck(act):
    x = _away_from_kinks([2, 3, 2, 2], seed=3).requires_grad_(True)
    b = torch.tensor([0.01, -0.02, 0.015], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, b: bias_act.bias_act(x, b, act=act, clamp=10), [x, b])

@pytest.mark.parametrize('act', ['lrelu', 'tanh', 'swish', 'softplus'])
def test_gradgradcheck(act):
    x = _away_from_kinks([2, 3, 2], seed=4).requires_grad_(True)
    b = torch.tensor([0.01, -0.02, 0.015], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda x, b: bias_act.bias_act(x, b, act=act, alpha=0.1, gain=1.3), [x, b])

def test_gradcheck_through_clamp():
    x = (_away_from_kinks([3, 4], seed=5) * 2).requires_grad_(True)
    clamp = 1.234
    unclamped = bias_act.bias_act(x.detach(), act='lrelu')
    assert ((unclamped.abs() - clamp).abs() > 1e-3).all() # Finite differences must not straddle the clamp's kink.
    assert (unclamped.abs() > clamp).any() and (unclamped.abs() < clamp).any()
    assert torch.autograd.gradcheck(lambda x: bias_act.bias_act(x, act='lrelu', clamp=clamp), [x])

#----------------------------------------------------------------------------

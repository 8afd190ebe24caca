"""Tests of training/diffusion.py against closed forms: T(p), the beta schedules and abar, the timestep
distribution (chi-square), the moments and gradient of q(x_t | x_0), the adaptation rule, state and pickling."""

import copy
import importlib.machinery
import json
import math
import os
import pickle
import subprocess
import sys
import types

import numpy as np
import pytest
import scipy.stats
import torch

import dnnlib
from training import diffusion
from training.diffaug import DiffAugmentPipe

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#----------------------------------------------------------------------------

def _linear_abar(T: int, beta_start: float = 1e-4, beta_end: float = 2e-2) -> np.ndarray:
    # abar_t = prod_{s=1..t} (1 - beta_s) with beta_s = start + (end - start) * (s - 1) / (T - 1); abar_0 = 1.
    abar = [1.0]
    for s in range(1, T + 1):
        abar.append(abar[-1] * (1 - (beta_start + (beta_end - beta_start) * (s - 1) / (T - 1))))
    return np.array(abar)

def _state(T: int, t_pool: list, p: float = 0.0) -> dict:
    return {'p': p, 'T': T, 't_pool': t_pool}

#----------------------------------------------------------------------------

@pytest.mark.parametrize('p, T', [(0.0, 10), (1.0, 1000), (0.5, 505), (0.25, 258), (0.1, 109), (0.0101, 20), (0.7, 703), (0.0004, 10)])
def test_T_from_p(p, T):
    # T = t_min + round(p * (t_max - t_min)), worked out by hand (0.25 * 990 = 247.5 rounds half to even: 248).
    d = diffusion.Diffusion()
    d.p = p
    d.update_T()
    assert d.T == T
    assert d.alphas_bar.shape == (T + 1,) and d.betas.shape == (T,)
    assert len(d.t_pool) == 64

def test_linear_alphas_bar_closed_form():
    d = diffusion.Diffusion(t_min=37, t_max=37)
    np.testing.assert_allclose(d.alphas_bar, _linear_abar(37), rtol=1e-12, atol=0)
    assert d.alphas_bar[0] == 1.0

@pytest.mark.parametrize('schedule', diffusion.BETA_SCHEDULES)
def test_beta_schedules(schedule):
    T, start, end = 50, 1e-4, 2e-2
    betas = diffusion.get_beta_schedule(schedule, start, end, T)
    assert betas.shape == (T,) and betas.dtype == np.float64
    assert np.all(betas > 0) and np.all(betas <= 1)
    if schedule != 'const':
        assert np.all(np.diff(betas) > 0) # Noise grows with t.
    if schedule == 'linear':
        np.testing.assert_allclose(betas[[0, -1]], [start, end], rtol=1e-12)
    elif schedule == 'quad':
        np.testing.assert_allclose(np.sqrt(betas), start ** 0.5 + (end ** 0.5 - start ** 0.5) * np.arange(T) / (T - 1), rtol=1e-12)
    elif schedule == 'const':
        np.testing.assert_array_equal(betas, end)
    elif schedule == 'jsd':
        np.testing.assert_allclose(betas, [1 / (T - i) for i in range(T)], rtol=1e-12)
    elif schedule == 'sigmoid':
        u = -6 + 12 * np.arange(T) / (T - 1)
        np.testing.assert_allclose(betas, start + (end - start) / (1 + np.exp(-u)), rtol=1e-12)
    elif schedule == 'cosine':
        # Unclipped steps reproduce abar_t = f(t) / f(0) with f(t) = cos^2((t/T + s) / (1 + s) * pi/2).
        f = lambda t: math.cos((t / T + 0.008) / 1.008 * math.pi / 2) ** 2
        abar = np.cumprod(1 - betas)
        np.testing.assert_allclose(abar[:-1], [f(t) / f(0) for t in range(1, T)], rtol=1e-10)
        assert betas[-1] == 0.999

def test_schedule_rebuilt_for_new_T():
    d = diffusion.Diffusion(beta_schedule='linear')
    d.adapt(1.0, 10 ** 9)
    assert d.T == 1000
    np.testing.assert_allclose(d.alphas_bar, _linear_abar(1000), rtol=1e-10)

#----------------------------------------------------------------------------

def _pooled_draws(d, num_updates: int) -> np.ndarray:
    draws = []
    for _ in range(num_updates):
        d.update_T()
        draws.append(d.t_pool[:d.pool_size].copy())
    return np.concatenate(draws)

def test_priority_distribution_chi_square():
    d = diffusion.Diffusion(t_min=10, t_max=10, ts_dist='priority', seed=123)
    draws = _pooled_draws(d, 1000)
    counts = np.bincount(draws, minlength=11)
    assert counts[0] == 0 and counts[1] == 0 # Weight of t = 1 is t - 1 = 0.
    t = np.arange(2, 11)
    observed = counts[2:]
    expected_code = (t - 1) / (t - 1).sum() * len(draws)
    assert scipy.stats.chisquare(observed, expected_code).pvalue > 1e-3
    # The paper's weights (proportional to t, on 1..T) are clearly a different distribution: the test can tell.
    paper = np.arange(1, 11) / np.arange(1, 11).sum() * len(draws)
    assert scipy.stats.chisquare(counts[1:], paper).pvalue < 1e-10

def test_uniform_distribution_chi_square():
    d = diffusion.Diffusion(t_min=10, t_max=10, ts_dist='uniform', seed=5)
    draws = _pooled_draws(d, 1000)
    counts = np.bincount(draws, minlength=11)
    assert counts[0] == 0
    assert scipy.stats.chisquare(counts[1:], np.full(10, len(draws) / 10)).pvalue > 1e-3

@pytest.mark.parametrize('ts_dist', diffusion.TS_DISTS)
def test_pool_mixes_one_to_one_with_zero(ts_dist):
    d = diffusion.Diffusion(ts_dist=ts_dist, pool_size=8)
    d.adapt(1.0, 30000)
    assert d.t_pool.shape == (16,) and d.t_pool.dtype == np.int64
    assert np.all(d.t_pool[8:] == 0) and np.all(d.t_pool[:8] >= 1) and np.all(d.t_pool[:8] <= d.T)

def test_forward_draws_t_uniformly_from_pool():
    d = diffusion.Diffusion(t_min=10, t_max=10)
    pool = [0] * 32 + [3] * 16 + [7] * 8 + [10] * 8
    d.set_state(_state(10, pool))
    torch.manual_seed(0)
    ts = torch.cat([d(torch.zeros([500, 1, 2, 2]))[1] for _ in range(20)]).flatten().numpy()
    n = len(ts)
    assert scipy.stats.binomtest(int((ts == 0).sum()), n, 0.5).pvalue > 1e-3 # The 1:1 mix with clean images.
    counts = np.array([(ts == v).sum() for v in [0, 3, 7, 10]])
    assert counts.sum() == n
    assert scipy.stats.chisquare(counts, np.array([32, 16, 8, 8]) / 64 * n).pvalue > 1e-3

#----------------------------------------------------------------------------

def test_moments_of_x_t():
    sigma, T, t = 0.5, 100, 40
    d = diffusion.Diffusion(t_min=T, t_max=T, noise_sd=sigma)
    d.set_state(_state(T, [t]))
    abar = _linear_abar(T)[t]
    torch.manual_seed(1)
    x0 = torch.randn([1, 3, 4, 4])
    N = 20000
    x_t, ts = d(x0.expand(N, -1, -1, -1))
    assert ts.shape == (N, 1) and ts.dtype == torch.int64 and torch.all(ts == t)
    mean_sd = math.sqrt((1 - abar) * sigma ** 2 / N)
    assert torch.allclose(x_t.mean(dim=0), math.sqrt(abar) * x0[0], atol=5 * mean_sd, rtol=0)
    var = x_t.var(dim=0).mean().item()
    assert var == pytest.approx((1 - abar) * sigma ** 2, rel=0.01)
    # Different pixels and samples get independent noise.
    noise = (x_t - math.sqrt(abar) * x0).reshape(N, -1)
    corr = np.corrcoef(noise[:, :4].T.numpy())
    assert np.abs(corr - np.eye(4)).max() < 0.05

def test_t_zero_is_clean():
    d = diffusion.Diffusion()
    d.set_state(_state(d.T, [0]))
    x0 = torch.randn([4, 3, 4, 4])
    x_t, t = d(x0)
    assert torch.equal(x_t, x0) and torch.all(t == 0)

def test_gradient_is_sqrt_alphas_bar():
    d = diffusion.Diffusion(t_min=60, t_max=60)
    d.set_state(_state(60, [0, 1, 7, 33, 60]))
    abar = _linear_abar(60)
    torch.manual_seed(2)
    x0 = torch.randn([32, 3, 4, 4], requires_grad=True)
    w = torch.randn([32, 3, 4, 4])
    x_t, t = d(x0)
    (x_t * w).sum().backward()
    expected = torch.from_numpy(np.sqrt(abar[t.flatten().numpy()])).float().reshape(-1, 1, 1, 1) * w
    assert torch.allclose(x0.grad, expected, rtol=1e-6, atol=1e-7)
    assert len(set(t.flatten().tolist())) > 2

def test_gradcheck():
    d = diffusion.Diffusion(t_min=20, t_max=20)
    def fn(x):
        torch.manual_seed(3) # Same t and noise at every evaluation.
        return d(x)[0]
    x = torch.randn([4, 2, 3, 3], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fn, [x])

#----------------------------------------------------------------------------

def test_adapt_rule_and_clipping():
    d = diffusion.Diffusion(target=0.6, ada_kimg=100)
    d.adapt(0.9, 6400) # +6400 / 100000
    assert d.p == pytest.approx(0.064, abs=1e-15) and d.T == 10 + 63
    d.adapt(0.1, 3200)
    assert d.p == pytest.approx(0.032, abs=1e-15)
    d.adapt(0.6, 100000) # sign(0) = 0: no move.
    assert d.p == pytest.approx(0.032, abs=1e-15)
    d.adapt(torch.tensor(0.0), 1000) # A tensor r_d works too.
    assert d.p == pytest.approx(0.022, abs=1e-15)
    d.adapt(-1.0, 10 ** 7)
    assert d.p == 0.0 and d.T == 10
    d.adapt(1.0, 10 ** 7)
    assert d.p == 1.0 and d.T == 1000
    assert isinstance(d.p, float) and isinstance(d.T, int)

def test_pool_reproducible_from_seed():
    a, b, c = diffusion.Diffusion(seed=9), diffusion.Diffusion(seed=9), diffusion.Diffusion(seed=10)
    for d in (a, b, c):
        d.adapt(1.0, 20000)
    assert np.array_equal(a.t_pool, b.t_pool)
    assert not np.array_equal(a.t_pool, c.t_pool)

def test_state_round_trip():
    d1 = diffusion.Diffusion(seed=1)
    for r_d in [0.9, 0.8, 0.1, 0.95]:
        d1.adapt(r_d, 12800)
    state = json.loads(json.dumps(d1.get_state()))
    assert set(state) == {'p', 'T', 't_pool'}
    d2 = diffusion.Diffusion(seed=2)
    assert not np.array_equal(d2.t_pool, d1.t_pool)
    d2.set_state(state)
    assert d2.p == d1.p and d2.T == d1.T and np.array_equal(d2.t_pool, d1.t_pool)
    np.testing.assert_array_equal(d2.alphas_bar, d1.alphas_bar)
    x0 = torch.randn([16, 3, 4, 4])
    torch.manual_seed(4)
    ref = d1(x0)
    torch.manual_seed(4)
    out = d2(x0)
    assert torch.equal(out[0], ref[0]) and torch.equal(out[1], ref[1])

def test_set_state_rejects_bad_pool():
    d = diffusion.Diffusion()
    with pytest.raises(dnnlib.UserError):
        d.set_state(_state(10, [0, 11]))
    with pytest.raises(dnnlib.UserError):
        d.set_state(_state(10, []))

#----------------------------------------------------------------------------

def _forward_seeded(d, x0, seed):
    torch.manual_seed(seed)
    return d(x0)[0]

def test_pickle_and_deepcopy_round_trip():
    d = diffusion.Diffusion(aug='diff', seed=3)
    d.adapt(1.0, 25000)
    x0 = torch.randn([8, 3, 8, 8])
    ref = _forward_seeded(d, x0, 5) # Fills the per-device cache, which must not be pickled.
    for d2 in [pickle.loads(pickle.dumps(d)), copy.deepcopy(d)]:
        assert d2.get_state() == d.get_state()
        assert d2._cache == {}
        assert torch.equal(_forward_seeded(d2, x0, 5), ref)

def test_pickle_loads_in_fresh_process(tmp_path):
    d = diffusion.Diffusion(seed=3)
    d.adapt(1.0, 40000)
    x0 = torch.randn([4, 3, 4, 4])
    ref = _forward_seeded(d, x0, 6)
    with open(tmp_path / 'd.pkl', 'wb') as f:
        pickle.dump(dict(augment_pipe=d, x0=x0), f)
    # Load from another directory with only the repo on sys.path, the way snapshots are read.
    script = (f'import pickle, sys, torch; sys.path.insert(0, {REPO_ROOT!r}); data = pickle.load(open("d.pkl", "rb")); '
              'torch.manual_seed(6); torch.save(data["augment_pipe"](data["x0"])[0], "out.pt")')
    subprocess.run([sys.executable, '-c', script], cwd=tmp_path, check=True, timeout=120)
    assert torch.equal(torch.load(tmp_path / 'out.pt'), ref)

#----------------------------------------------------------------------------

@pytest.mark.parametrize('kwargs, option', [
    (dict(beta_schedule='exp'), '--beta_schedule'),
    (dict(ts_dist='gauss'), '--ts_dist'),
    (dict(aug='bgc'), '--aug'),
    (dict(t_min=20, t_max=10), '--t_min'),
    (dict(t_min=1, ts_dist='priority'), '--t_min'),
    (dict(ada_kimg=0), '--ada_kimg'),
])
def test_bad_options_raise_user_error(kwargs, option):
    with pytest.raises(dnnlib.UserError, match=option):
        diffusion.Diffusion(**kwargs)

def test_get_beta_schedule_bad_name():
    with pytest.raises(dnnlib.UserError, match='--beta_schedule.*linear'):
        diffusion.get_beta_schedule('exp', 1e-4, 2e-2, 10)

def test_diffaug_before_diffusion():
    d = diffusion.Diffusion(aug='diff', diffaug_policy='translation')
    assert isinstance(d.aug, DiffAugmentPipe) and d.aug.policy == 'translation'
    d.set_state(_state(d.T, [0]))
    x0 = torch.randn([4, 3, 8, 8], requires_grad=True)
    torch.manual_seed(7)
    x_t, _ = d(x0)
    torch.manual_seed(7)
    assert torch.equal(x_t, DiffAugmentPipe('translation')(x0)) # t = 0: just the augmentation.
    x_t.square().sum().backward()
    assert x0.grad.abs().sum() > 0

#----------------------------------------------------------------------------

class _FakeAugmentPipe(torch.nn.Module):
    """Stand-in for training.augment.AugmentPipe: records its kwargs, owns a p buffer, doubles the images."""
    def __init__(self, **kwargs):
        super().__init__()
        self.kwargs = kwargs
        self.register_buffer('p', torch.ones([]))

    def forward(self, images):
        return images * 2

# Pickling (checked by the persistent Diffusion) finds the class under the name it stands in for.
_FakeAugmentPipe.__module__, _FakeAugmentPipe.__qualname__ = 'training.augment', 'AugmentPipe'

def test_ada_missing_module_raises_user_error(monkeypatch):
    monkeypatch.setitem(sys.modules, 'training.augment', None) # Makes the import fail as if the file did not exist.
    with pytest.raises(dnnlib.UserError, match='--aug=ada.*not available'):
        diffusion.Diffusion(aug='ada')

def test_ada_p_follows_diffusion_p(monkeypatch):
    module = types.ModuleType('training.augment')
    module.__spec__ = importlib.machinery.ModuleSpec('training.augment', None)
    module.AugmentPipe = _FakeAugmentPipe
    monkeypatch.setitem(sys.modules, 'training.augment', module)

    d = diffusion.Diffusion(aug='ada', ada_maxp=0.3)
    assert d.aug.kwargs == diffusion.ADA_BGC_KWARGS and float(d.aug.p) == 0.0
    d.adapt(1.0, 20000)
    assert float(d.aug.p) == pytest.approx(0.2)
    d.adapt(1.0, 20000)
    assert float(d.aug.p) == pytest.approx(0.3) and d.p == pytest.approx(0.4)
    d.set_state(_state(d.T, [0], p=0.1))
    assert float(d.aug.p) == pytest.approx(0.1)
    x0 = torch.randn([2, 3, 4, 4])
    assert torch.equal(d(x0)[0], x0 * 2) # Augmentation first, then the (here t = 0) diffusion.

    d = diffusion.Diffusion(aug='ada', ada_kwargs=dict(xflip=1))
    assert d.aug.kwargs == dict(xflip=1)
    d.adapt(1.0, 70000)
    assert float(d.aug.p) == pytest.approx(0.7)

#----------------------------------------------------------------------------

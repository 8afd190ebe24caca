"""DDPM (training/networks_ddpm.py, DDPMLoss): the forward process against the Markov chain it stands for, the loss
target against epsilon recovered by hand, the sampler against a Gaussian data set whose exact epsilon is known,
the UNet's shapes at 32 px, and the sampler's interface (strided steps, seeds, refusals)."""

import numpy as np
import pytest
import torch

from torch_utils import training_stats
from training import diffusion
from training.loss import DDPMLoss
from training.networks_ddpm import Generator, Schedule, UNet

TINY_UNET = dict(ch=8, ch_mult=[1], num_res_blocks=1, attn_resolutions=[])

#----------------------------------------------------------------------------

def chain_moments(betas):
    """Mean factor and variance of x_t given x_0 by running the chain x_t = sqrt(1 - beta_t) x_(t-1) + sqrt(beta_t) eps
    one step at a time: [T + 1] each, t = 0..T."""
    scale, var = [1.0], [0.0]
    for beta in betas:
        scale.append(scale[-1] * np.sqrt(1 - beta))
        var.append((1 - beta) * var[-1] + beta)
    return np.array(scale), np.array(var)

@pytest.mark.parametrize('schedule', ['linear', 'cosine', 'quad', 'sigmoid', 'vp'])
def test_forward_process_is_the_chain(schedule):
    T = 40
    start, end = (0.1, 20) if schedule == 'vp' else (1e-4, 0.2)
    betas = diffusion.vp_betas(start, end, T) if schedule == 'vp' else diffusion.get_beta_schedule(schedule, start, end, T)
    sched = Schedule(T, schedule, start, end)
    scale, var = chain_moments(betas)
    np.testing.assert_allclose(sched.alphas_bar.sqrt().numpy(), scale, rtol=1e-12)
    np.testing.assert_allclose((1 - sched.alphas_bar).numpy(), var, rtol=1e-9, atol=1e-15)
    # q_sample draws from N(sqrt(abar_t) x_0, (1 - abar_t) I): 20000 draws per t, moments within 4 standard errors.
    torch.manual_seed(0)
    t = torch.arange(T + 1).repeat_interleave(20000)
    x_0 = torch.full([len(t), 1, 1, 1], 0.7)
    x_t = sched.q_sample(x_0, t, torch.randn_like(x_0)).reshape(T + 1, -1).double()
    err = 4 * np.sqrt(var / 20000) + 1e-6 # float32 at t = 0
    assert np.all(np.abs(x_t.mean(1).numpy() - 0.7 * scale) <= err)
    assert np.all(np.abs(x_t.var(1).numpy() - var) <= 4 * var * np.sqrt(2 / 20000) + 1e-6)

def test_vp_schedule_is_ddgans():
    # The variance-preserving SDE at u = eps + (1 - eps) i / T: abar_i = exp(-u^2 (b_max - b_min) / 2 - u b_min)
    # relative to u_0 (the release's first beta of 1e-8 aside); at T = 4 with 0.1 and 20, by hand.
    u = 1e-3 + (1 - 1e-3) * np.arange(5) / 4
    log_abar = -0.5 * u ** 2 * 19.9 - 0.1 * u
    expected = np.exp(log_abar - log_abar[0])
    np.testing.assert_allclose(Schedule(4, 'vp', 0.1, 20).alphas_bar.numpy(), expected, rtol=1e-12)
    assert expected[-1] == pytest.approx(4.3e-5, rel=0.01)

#----------------------------------------------------------------------------

class OracleEps(torch.nn.Module):
    """An 'epsilon network' that knows x_0: returns the noise of x_t exactly (abar from the chain) plus an offset."""
    def __init__(self, x_0, abar, offset):
        super().__init__()
        self.x_0, self.abar, self.offset = x_0, abar, offset
        self.seen_t = None

    def forward(self, x_t, t, c):
        self.seen_t = t
        abar = torch.as_tensor(self.abar, dtype=torch.float32)[t].reshape(-1, 1, 1, 1)
        return (x_t - abar.sqrt() * self.x_0) / (1 - abar).sqrt() + self.offset

@pytest.mark.parametrize('offset', [0.0, 0.5])
def test_loss_target_is_epsilon(monkeypatch, offset):
    # L_simple = |eps - net(x_t, t)|^2: a network returning the true eps (+ offset) scores offset^2.
    G = Generator(c_dim=0, img_resolution=8, img_channels=1, num_timesteps=100, beta_end=0.05, **TINY_UNET)
    _scale, var = chain_moments(diffusion.get_beta_schedule('linear', 1e-4, 0.05, 100))
    x_0 = torch.rand([16, 1, 8, 8]) * 2 - 1
    G.unet = OracleEps(x_0, 1 - var, offset)
    reported = {}
    monkeypatch.setattr(training_stats, 'report', lambda name, value: reported.setdefault(name, value.detach()))
    loss = DDPMLoss(device=torch.device('cpu'), G=G)
    G.unet.offset = torch.tensor(offset, requires_grad=True)
    loss.accumulate_gradients('Gboth', x_0, torch.zeros([16, 0]), None, None, gain=3, cur_nimg=0)
    np.testing.assert_allclose(reported['Loss/G/loss'].numpy(), np.full(16, offset ** 2), atol=2e-4)
    assert G.unet.offset.grad.item() == pytest.approx(3 * 2 * offset, abs=6e-4)
    assert G.unet.seen_t.min() >= 1 and G.unet.seen_t.max() <= 100 and len(set(G.unet.seen_t.tolist())) > 8
    # t uniform on 1..T exactly: with T = 3 and 3000 images every count is 1000 +- 4 standard deviations.
    G = Generator(c_dim=0, img_resolution=8, img_channels=1, num_timesteps=3, **TINY_UNET)
    G.unet = OracleEps(torch.zeros([3000, 1, 8, 8]), G.schedule.alphas_bar.float(), 0.0)
    G.unet.offset = torch.tensor(0.0, requires_grad=True)
    DDPMLoss(device=torch.device('cpu'), G=G).accumulate_gradients('Gboth', torch.zeros([3000, 1, 8, 8]), torch.zeros([3000, 0]), None, None, gain=1, cur_nimg=0)
    counts = np.bincount(G.unet.seen_t.numpy(), minlength=5)
    assert counts[0] == 0 and counts[4] == 0 and all(abs(n - 1000) < 4 * np.sqrt(3000 * 1 / 3 * 2 / 3) for n in counts[1:4])

#----------------------------------------------------------------------------

class GaussianEps(torch.nn.Module):
    """The exact eps(x_t, t) = E[eps | x_t] of data N(mu, s^2) per pixel: sqrt(1 - abar) (x_t - sqrt(abar) mu) / (abar s^2 + 1 - abar)."""
    def __init__(self, alphas_bar, mu, s):
        super().__init__()
        self.alphas_bar, self.mu, self.s = alphas_bar, mu, s

    def forward(self, x_t, t, c):
        abar = self.alphas_bar[t].reshape(-1, 1, 1, 1)
        return ((1 - abar).sqrt() * (x_t.double() - abar.sqrt() * self.mu) / (abar * self.s ** 2 + 1 - abar)).float()

@pytest.mark.parametrize('sampler', ['ddpm', 'ddim'])
def test_exact_eps_samples_the_gaussian(sampler):
    # Over all 1000 steps of the linear schedule both samplers reproduce N(0.3, 0.2^2) (4800 pixel values: 4 standard
    # errors, and 2% for the ancestral sampler's posterior variance, which is exact only in the limit of small steps).
    # Strided sampling keeps the mean; its variance shrinks with the step count (0.02 at 20 steps), as coarse
    # discretizations do, so only the mean is asserted there.
    mu, s = 0.3, 0.2
    G = Generator(c_dim=0, img_resolution=4, img_channels=1, **TINY_UNET)
    G.unet = GaussianEps(G.schedule.alphas_bar, mu, s)
    torch.manual_seed(1)
    z = torch.randn([300, G.z_dim])
    with torch.no_grad():
        x = G(z, torch.zeros([300, 0]), sampler=sampler).double()
        strided = G(z, torch.zeros([300, 0]), sample_steps=20, sampler=sampler).double()
    n = x.numel()
    assert abs(x.mean().item() - mu) < 4 * s / np.sqrt(n) and abs(strided.mean().item() - mu) < 4 * s / np.sqrt(n)
    assert abs(x.var().item() / s ** 2 - 1) < 4 * np.sqrt(2 / n) + 0.02

def test_sampler_interface():
    G = Generator(c_dim=0, img_resolution=8, img_channels=1, num_timesteps=30, sample_steps=6, **TINY_UNET).eval()
    assert G.schedule.timesteps(6) == [0, 5, 10, 15, 20, 25, 30] and G.schedule.timesteps(4) == [0, 8, 15, 22, 30]
    z = torch.randn([3, G.z_dim])
    c = torch.zeros([3, 0])
    with torch.no_grad():
        img = G(z, c)
        # A function of z alone: the same image alone or in a batch, twice; a different sampler or step count differs.
        assert torch.allclose(G(z[1:2], c[:1]), img[1:2], atol=1e-6) and torch.equal(G(z, c), img)
        assert not torch.allclose(G(z, c, sampler='ddim'), img) and not torch.allclose(G(z, c, sample_steps=30), img)
    for kwargs, words in [(dict(sample_steps=0), '--sample-steps=0: expected 1 to 30'), (dict(sample_steps=31), '--sample-steps=31'), (dict(sampler='euler'), '--sampler=euler')]:
        with pytest.raises(ValueError, match=words):
            G(z, c, **kwargs)

#----------------------------------------------------------------------------

def test_unet_shapes_at_32px():
    # The ddpm preset's UNet on CIFAR-10: 35.7M parameters (the DDPM paper's CIFAR-10 model), eps of the input's shape;
    # the encoder at 32, 16, 8, 4 px, attention at 16.
    torch.manual_seed(0)
    unet = UNet(img_resolution=32, in_channels=3, out_channels=3)
    assert sum(p.numel() for p in unet.parameters()) == pytest.approx(35.7e6, rel=0.01)
    shapes = []
    hooks = [block.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:]))) for block in unet.down]
    x = torch.randn([2, 3, 32, 32])
    out = unet(x, torch.tensor([1, 1000]), torch.zeros([2, 0]))
    for hook in hooks:
        hook.remove()
    assert out.shape == (2, 3, 32, 32)
    assert shapes == [(128, 32, 32)] * 2 + [(128, 16, 16)] + [(256, 16, 16)] * 2 + [(256, 8, 8)] * 3 + [(256, 4, 4)] * 3
    assert [block.qkv is not None for block in unet.down if hasattr(block, 'qkv')] == [False, False, True, True, False, False, False, False]
    # Labels enter the time embedding; a latent makes every norm adaptive (DDGAN).
    cond = UNet(img_resolution=16, in_channels=1, out_channels=1, c_dim=10, z_dim=5, z_emb_dim=12, n_mlp=2, tanh=True, **TINY_UNET)
    assert cond(torch.randn([2, 1, 16, 16]), torch.tensor([1, 2]), torch.eye(10)[:2], torch.randn([2, 5])).shape == (2, 1, 16, 16)
    with pytest.raises(ValueError, match='does not halve'):
        UNet(img_resolution=6, in_channels=1, out_channels=1, ch_mult=[1, 2, 2])

#----------------------------------------------------------------------------

"""DDGAN (training/networks_ddgan.py, DDGANLoss): the posterior q(x_(t-1) | x_t, x_0) against Gaussian conditioning
done by hand, the real pairs against the forward process, G's steps, D's shapes and inputs, the loss's gradients."""

import numpy as np
import pytest
import torch

from torch_utils import training_stats
from training.loss import DDGANLoss
from training.networks_ddgan import Discriminator, Generator
from training.networks_ddpm import Schedule

TINY = dict(ch=8, ch_mult=[1, 2], num_res_blocks=1, attn_resolutions=[8], nz=6, z_emb_dim=12, n_mlp=2)

#----------------------------------------------------------------------------

def conditioned(abar_s, abar_t, x_0, x_t):
    """q(x_s | x_t, x_0) by Gaussian conditioning: x_s ~ N(sqrt(abar_s) x_0, 1 - abar_s) and x_t = sqrt(a) x_s +
    sqrt(1 - a) eps with a = abar_t / abar_s; the precision adds up, the mean is precision-weighted. s = 0: x_0 itself."""
    if abar_s == 1:
        return x_0, 0.0
    a = abar_t / abar_s
    precision = 1 / (1 - abar_s) + a / (1 - a)
    mean = (np.sqrt(abar_s) * x_0 / (1 - abar_s) + np.sqrt(a) * x_t / (1 - a)) / precision
    return mean, 1 / precision

@pytest.mark.parametrize('schedule,T,pairs', [('vp', 4, [(0, 1), (1, 2), (2, 3), (3, 4)]), ('linear', 1000, [(0, 1), (499, 500), (0, 1000), (250, 750), (950, 1000)])])
def test_posterior_is_gaussian_conditioning(schedule, T, pairs):
    sched = Schedule(T, schedule, 0.1 if schedule == 'vp' else 1e-4, 20 if schedule == 'vp' else 0.02)
    abar = sched.alphas_bar.numpy()
    x_0 = torch.tensor([-0.8, 0.1, 0.9]).reshape(3, 1, 1, 1)
    x_t = torch.tensor([1.3, -0.4, 0.2]).reshape(3, 1, 1, 1)
    for s, t in pairs:
        mean, var = sched.posterior(x_0, x_t, torch.full([3], s), torch.full([3], t))
        expected_mean, expected_var = conditioned(abar[s], abar[t], x_0.double().numpy(), x_t.double().numpy())
        np.testing.assert_allclose(mean.numpy(), expected_mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(var.numpy().reshape(-1), np.full(3, expected_var), rtol=1e-5, atol=1e-7)

def test_posterior_by_sampling():
    # The joint (x_(t-1), x_t) from the forward process, then x_(t-1) regressed on x_t for a fixed x_0: slope,
    # intercept and residual variance are the posterior's coefficients (DDGAN's T = 4 at t = 3).
    sched = Schedule(4, 'vp', 0.1, 20)
    torch.manual_seed(0)
    x_0 = torch.full([1600000, 1, 1, 1], 0.5)
    loss = DDGANLoss(device=torch.device('cpu'), G=type('G', (), dict(schedule=sched, num_timesteps=4))(), D=None)
    x_prev, x_t, t = loss.real_pair(x_0)
    x_prev, x_t = x_prev.flatten()[t == 3].double().numpy(), x_t.flatten()[t == 3].double().numpy()
    t = torch.tensor([3])
    slope, intercept = np.polyfit(x_t, x_prev, 1)
    mean0, var = sched.posterior(x_0[:1], torch.zeros([1, 1, 1, 1]), t[:1] - 1, t[:1])
    mean1, _ = sched.posterior(x_0[:1], torch.ones([1, 1, 1, 1]), t[:1] - 1, t[:1])
    assert slope == pytest.approx(float(mean1 - mean0), abs=5e-3) and intercept == pytest.approx(float(mean0), abs=5e-3)
    assert np.var(x_prev - slope * x_t - intercept) == pytest.approx(float(var), rel=1e-2)

def test_real_pairs_follow_the_forward_process():
    G = Generator(c_dim=0, img_resolution=8, img_channels=1, **TINY)
    loss = DDGANLoss(device=torch.device('cpu'), G=G, D=None)
    torch.manual_seed(0)
    x_0 = torch.full([200000, 1, 1, 1], -0.6)
    x_prev, x_t, t = loss.real_pair(x_0)
    abar = G.schedule.alphas_bar.numpy()
    assert t.min() == 1 and t.max() == 4
    for k in range(1, 5):
        for x, step in [(x_prev[t == k], k - 1), (x_t[t == k], k)]:
            x = x.double()
            assert x.mean().item() == pytest.approx(-0.6 * np.sqrt(abar[step]), abs=4 * np.sqrt((1 - abar[step]) / len(x)) + 1e-6)
            assert x.var().item() == pytest.approx(1 - abar[step], rel=0.03, abs=1e-6)

#----------------------------------------------------------------------------

def test_generator_steps_and_sampling():
    torch.manual_seed(0)
    G = Generator(c_dim=0, img_resolution=8, img_channels=1, **TINY).eval()
    for p in G.parameters():
        torch.nn.init.normal_(p, 0, 0.3) # a random G: the zero-initialized last layer would make every x_0' zero
    z = torch.randn([3, G.z_dim])
    c = torch.zeros([3, 0])
    x_t = torch.randn([3, 1, 8, 8])
    latent = torch.randn([3, G.nz])
    with torch.no_grad():
        x_0 = G.net(x_t, torch.full([3], 1), c, latent)
        # The last step (t = 1) gives x_0' itself whatever the noise: the posterior at s = 0 is a point mass.
        assert torch.allclose(G.step(x_t, torch.full([3], 1), c, latent, torch.randn_like(x_t)), x_0, atol=1e-6)
        assert x_0.abs().max() <= 1 and x_0.std() > 0.05
        # The sampler is T such steps from x_T = z; a function of z alone (twice, bit for bit; alone or in a batch, to
        # float32 rounding: ATen's kernels block differently for another batch size, and the worst difference measured
        # over 4 steps was 5.2e-6 (AVX2, 1 or 2 threads) and 6.8e-6 (ATEN_CPU_CAPABILITY=default) on images in
        # [-1, 1]; 2e-5 keeps a 3x margin and still fails a latent or noise drawn from the wrong row (differences ~1).
        img = G(z, c)
        assert img.shape == (3, 1, 8, 8) and torch.equal(G(z, c), img)
        np.testing.assert_allclose(G(z[2:], c[:1]).numpy(), img[2:].numpy(), rtol=0, atol=2e-5)
        # By hand, the per-sample noise drawn as the sampler draws it.
        generators = G.schedule.row_generators(z)
        x = z.reshape(3, 1, 8, 8)
        for t in [4, 3, 2, 1]:
            lat = torch.stack([torch.randn([G.nz], generator=g) for g in generators])
            noise = torch.stack([torch.randn([1, 8, 8], generator=g) for g in generators])
            mean, var = G.schedule.posterior(G.net(x, torch.full([3], t), c, lat), x, torch.full([3], t - 1), torch.full([3], t))
            x = mean + var.sqrt() * noise
        assert torch.allclose(x, img, atol=1e-6)
    for kwargs, words in [(dict(sample_steps=2), 'DDGAN samples with the 4 steps'), (dict(sampler='ddim'), '--sampler=ddim')]:
        with pytest.raises(ValueError, match=words):
            G(z, c, **kwargs)

def test_discriminator_shapes_and_inputs():
    # The ddgan preset's D at 32 px (ngf 64, time embedding 256): one logit per pair; x_t and t both matter.
    torch.manual_seed(0)
    D = Discriminator(c_dim=0, img_resolution=32, img_channels=3)
    for p in D.parameters():
        torch.nn.init.normal_(p, 0, 0.05)
    x, x_t = torch.randn([4, 3, 32, 32]), torch.randn([4, 3, 32, 32])
    t = torch.tensor([1, 2, 3, 4])
    logits = D(x, torch.zeros([4, 0]), t, x_t)
    assert logits.shape == (4, 1)
    assert not torch.allclose(D(x, torch.zeros([4, 0]), t, torch.zeros_like(x_t)), logits)
    assert not torch.allclose(D(x, torch.zeros([4, 0]), t.flip(0), x_t), logits)
    assert torch.equal(D(x, torch.zeros([4, 0]), t, torch.zeros_like(x_t)), D(x, torch.zeros([4, 0]), t))
    with pytest.raises(ValueError, match='power of two >= 8'):
        Discriminator(c_dim=0, img_resolution=4, img_channels=1)

#----------------------------------------------------------------------------

def test_loss_phases_and_gradients(monkeypatch):
    torch.manual_seed(0)
    G = Generator(c_dim=0, img_resolution=8, img_channels=1, **TINY)
    D = Discriminator(c_dim=0, img_resolution=8, img_channels=1, ngf=4, t_emb_dim=16)
    loss = DDGANLoss(device=torch.device('cpu'), G=G, D=D, r1_gamma=0.5)
    real = torch.rand([8, 1, 8, 8]) * 2 - 1
    c = torch.zeros([8, 0])
    reported = {}
    monkeypatch.setattr(training_stats, 'report', lambda name, value: reported.setdefault(name, value.detach()))
    for phase, trained, untouched, names in [('Gboth', G, D, ['Loss/G/loss']), ('Dmain', D, G, ['Loss/D/loss']), ('Dreg', D, G, ['Loss/r1_penalty'])]:
        reported.clear()
        for net in [G, D]:
            net.requires_grad_(net is trained)
            net.zero_grad(set_to_none=True)
        loss.accumulate_gradients(phase, real, c, None, c, gain=1, cur_nimg=0)
        assert all(name in reported for name in names), phase
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in trained.parameters()), phase
        assert all(p.grad is None for p in untouched.parameters()), phase
    # R1: gamma / 2 |grad_(x_(t-1)) D|^2 of the real pair, reported per image.
    assert reported['Loss/D/reg'].numpy() == pytest.approx(0.25 * reported['Loss/r1_penalty'].numpy())
    # Refused: Diffusion-GAN's adaptive diffusion in front of this D.
    with pytest.raises(Exception, match='--diffusion: DDPM and DDGAN have their own forward process'):
        DDGANLoss(device=torch.device('cpu'), G=G, D=D, diffusion=type('Diffusion', (), dict(diffuse=True))())

#----------------------------------------------------------------------------

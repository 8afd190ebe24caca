"""DDGAN (training/networks_ddgan.py, DDGANLoss): the posterior q(x_(t-1) | x_t, x_0) against Gaussian conditioning
done by hand, the real pairs against the forward process, G's steps, D's shapes and inputs, the loss's gradients."""

import numpy as np
import pytest
import torch

import dnnlib
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

class PairD(torch.nn.Module):
    """D(x_(t-1), c, t, x_t) = <V, x_(t-1)> + <U, x_t> + b_t: linear in both images, a bias per timestep."""
    def __init__(self):
        super().__init__()
        self.V = torch.nn.Parameter(torch.randn([1, 8, 8]) * 0.3)
        self.U = torch.nn.Parameter(torch.randn([1, 8, 8]) * 0.3)
        self.b = torch.nn.Parameter(torch.randn([5]) * 0.5)
    def forward(self, img, c, t, x_t):
        return ((img * self.V).sum([1, 2, 3]) + (x_t * self.U).sum([1, 2, 3]) + self.b[t])[:, None]

def stub_ddgan(r1_gamma=0.3):
    torch.manual_seed(0)
    G = Generator(c_dim=0, img_resolution=8, img_channels=1, **TINY)
    for p in G.parameters():
        torch.nn.init.normal_(p, 0, 0.1) # the zero-initialized last layer would make every x_0' zero
    G.requires_grad_(False)
    D = PairD().requires_grad_(False)
    loss = DDGANLoss(device=torch.device('cpu'), G=G, D=D, r1_gamma=r1_gamma)
    return G, D, loss, torch.rand([6, 1, 8, 8]) * 2 - 1, torch.zeros([6, 0])

def hand_pairs(G, x_0, seed):
    """The draws of one D or G pass replayed (t, two forward noises, G's latent and posterior noise) and the real
    pair built from the forward process in float64: x_(t-1) = sqrt(abar_(t-1)) x_0 + sqrt(1 - abar_(t-1)) e1,
    x_t = sqrt(a) x_(t-1) + sqrt(1 - a) e2 with a = abar_t / abar_(t-1). Returns (t, x_(t-1), x_t, fake(requires_grad))."""
    torch.manual_seed(seed)
    t = torch.randint(1, G.num_timesteps + 1, [x_0.shape[0]])
    e1, e2 = torch.randn_like(x_0), torch.randn_like(x_0)
    z, noise = torch.randn([x_0.shape[0], G.nz]), torch.randn_like(x_0)
    abar = G.schedule.alphas_bar.double()
    ab_prev, a = abar[t - 1].reshape(-1, 1, 1, 1), (abar[t] / abar[t - 1]).reshape(-1, 1, 1, 1)
    x_prev = ab_prev.sqrt() * x_0.double() + (1 - ab_prev).sqrt() * e1.double()
    x_t = a.sqrt() * x_prev + (1 - a).sqrt() * e2.double()
    return t, x_prev, x_t, lambda: G.step(x_t.float(), t, torch.zeros([x_0.shape[0], 0]), z, noise)

def pair_logits(D, x, t, x_t):
    return (x.double() * D.V.detach().double()).sum([1, 2, 3]) + (x_t * D.U.detach().double()).sum([1, 2, 3]) + D.b.detach().double()[t]

def run_phase(loss, module, phase, real, c, gain, seed):
    module.requires_grad_(True)
    torch.manual_seed(seed)
    loss.accumulate_gradients(phase, real, c, None, c, gain=gain, cur_nimg=0)
    module.requires_grad_(False)

@pytest.mark.parametrize('phase', ['Dmain', 'Dreg', 'Dboth'])
def test_d_loss_and_r1_by_hand(phase):
    # L_D = gain mean_n [softplus(D(fake_n, t_n, x_t,n)) + softplus(-D(x_(t-1),n, t_n, x_t,n)) + gamma/2 |dD/dx_(t-1)|^2]:
    # the fake is G's step from the real pair's x_t. With D linear: dV = gain mean(s_f fake - s_r x_(t-1)) + gain gamma V,
    # dU = gain mean((s_f - s_r) x_t), db_k = gain sum_(t_n = k) (s_f - s_r) / N, s_f = sigmoid(D(fake)),
    # s_r = sigmoid(-D(real)); R1 differentiates x_(t-1) only (U and b get nothing from it).
    G, D, loss, real, c = stub_ddgan(r1_gamma=0.3)
    run_phase(loss, D, phase, real, c, gain=15, seed=3)
    t, x_prev, x_t, fake = hand_pairs(G, real, seed=3)
    main, r1 = phase != 'Dreg', phase != 'Dmain'
    with torch.no_grad():
        fake = fake().double()
    s_f = torch.sigmoid(pair_logits(D, fake, t, x_t)) * main
    s_r = torch.sigmoid(-pair_logits(D, x_prev, t, x_t)) * main
    N = real.shape[0]
    expected_V = 15 * ((s_f[:, None, None, None] * fake - s_r[:, None, None, None] * x_prev).mean(0) + 0.3 * r1 * D.V.detach().double())
    expected_U = 15 * ((s_f - s_r)[:, None, None, None] * x_t).mean(0)
    expected_b = 15 * torch.zeros([5], dtype=torch.float64).index_add_(0, t, s_f - s_r) / N
    torch.testing.assert_close(D.V.grad.double(), expected_V, rtol=1e-4, atol=1e-6)
    for param, expected in [(D.U, expected_U), (D.b, expected_b)]:
        grad = param.grad.double() if param.grad is not None else torch.zeros_like(expected)
        torch.testing.assert_close(grad, expected, rtol=1e-4, atol=1e-6)
    assert all(p.grad is None for p in G.parameters())

def test_g_loss_by_hand():
    # L_G = gain mean softplus(-D(fake, t, x_t)), the fake G's step from a fresh real pair's x_t, D given that x_t.
    G, D, loss, real, c = stub_ddgan()
    run_phase(loss, G, 'Gboth', real, c, gain=2, seed=5)
    grads = [p.grad.clone() for p in G.parameters()]
    G.zero_grad(set_to_none=True)
    G.requires_grad_(True)
    t, _x_prev, x_t, fake = hand_pairs(G, real, seed=5)
    fake = fake()
    logits = (fake * D.V).sum([1, 2, 3]) + (x_t.float() * D.U).sum([1, 2, 3]) + D.b[t]
    (2 * torch.nn.functional.softplus(-logits).mean()).backward()
    for (name, p), grad in zip(G.named_parameters(), grads):
        torch.testing.assert_close(grad, p.grad, rtol=1e-4, atol=1e-6, msg=name)
    assert sum(float(grad.abs().sum()) for grad in grads) > 0 and all(p.grad is None for p in D.parameters())

def test_preset_r1_reaches_the_loss(tmp_path):
    # ddgan.yaml (ddgan_demo's base): R1 gamma 0.02 every 15 minibatches, the official CIFAR-10 setting. The loss
    # built from the resolved preset as the loop builds it, its phases from the loop's make_phases: dV = 15 0.02 V.
    import train
    from tests.test_train import parse_opts, write_pngs
    from training import training_loop
    c, _desc = train.build_config(parse_opts('--outdir', 'unused', '--data', write_pngs(tmp_path, [8] * 2), '--cfg', 'ddgan_demo'))
    G, D, _loss, real, c_ = stub_ddgan()
    loss = dnnlib.util.construct_class_by_name(device=torch.device('cpu'), G=G, D=D, diffusion=None, **c.loss_kwargs)
    phases = training_loop.make_phases(modules=dict(G=G, D=D), opt_kwargs=c.opt_kwargs, reg_intervals=c.reg_intervals)
    assert [(phase.name, phase.interval) for phase in phases] == [('Gboth', 1), ('Dmain', 1), ('Dreg', 15)]
    run_phase(loss, D, 'Dreg', real, c_, gain=phases[-1].interval, seed=0)
    torch.testing.assert_close(D.V.grad, 15 * 0.02 * D.V.detach(), rtol=1e-5, atol=1e-8)

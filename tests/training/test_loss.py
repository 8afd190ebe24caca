"""Formula tests of StyleGAN2Loss (training/loss.py) on stand-in networks small enough to compute by hand: linear
mapping, linear synthesis and a linear discriminator, so that R1, the softplus losses, the path-length penalty and
its running mean, the lazy-regularization gain and style mixing's cutoff each have a closed form or an independent
hand-written formula to meet."""

import numpy as np
import pytest
import torch

import dnnlib
from training.loss import DCGANLoss, ProjectedGANLoss, StyleGAN2Loss

Z, W, L, C, H = 3, 3, 4, 1, 4       # z and w dims, number of ws, image channels and size

#----------------------------------------------------------------------------

class Mapping(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.A = torch.nn.Parameter(torch.randn([Z, W]))
    def forward(self, z, c, update_emas=False):
        return (z @ self.A)[:, None, :].repeat(1, L, 1)

class Synthesis(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.B = torch.nn.Parameter(torch.randn([L, W, C * H * H]) * 0.3)
    def forward(self, ws, update_emas=False):
        return torch.einsum('nlw,lwp->np', ws, self.B).reshape(-1, C, H, H)

class Generator(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.mapping, self.synthesis, self.z_dim, self.c_dim = Mapping(), Synthesis(), Z, 0

class Discriminator(torch.nn.Module):
    """logits = <V, img> + bias: grad_img = V for every image."""
    def __init__(self):
        super().__init__()
        self.V = torch.nn.Parameter(torch.randn([C, H, H]) * 0.5)
        self.bias = torch.nn.Parameter(torch.tensor(0.1))
    def forward(self, img, c, t, update_emas=False):
        return (img * self.V).sum([1, 2, 3])[:, None] + self.bias

def setup(**loss_kwargs):
    torch.manual_seed(0)
    G, D = Generator(), Discriminator()
    kwargs = dict(r1_gamma=10, style_mixing_prob=0, pl_weight=2, pl_decay=0.01)
    kwargs.update(loss_kwargs)
    loss = StyleGAN2Loss(device=torch.device('cpu'), G=G, D=D, diffusion=None, **kwargs)
    z = torch.randn([6, Z])
    real = torch.randn([6, C, H, H])
    c = torch.zeros([6, 0])
    return G, D, loss, z, real, c

def hand_G(G, z):
    """The stand-in generator written out: img = sum_l (z A) B_l."""
    w = z @ G.mapping.A
    return torch.einsum('nw,lwp->np', w, G.synthesis.B).reshape(-1, C, H, H)

def run(loss, module, phase, z, real, c, gain):
    module.requires_grad_(True)
    loss.accumulate_gradients(phase=phase, real_img=real, real_c=c, gen_z=z, gen_c=c, gain=gain, cur_nimg=0)
    module.requires_grad_(False)

#----------------------------------------------------------------------------

def test_r1_is_half_gamma_squared_gradient_times_gain():
    # D linear in the image: grad_x D = V, so R1 = gamma/2 |V|^2 per image and d/dV of gain * mean(R1) = gain * gamma * V.
    # Not reached by R1: the bias (its gradient stays None here; the loop steps it with zero).
    G, D, loss, z, real, c = setup(r1_gamma=10)
    run(loss, D, 'Dreg', z, real, c, gain=16)
    torch.testing.assert_close(D.V.grad, 16 * 10 * D.V.detach(), rtol=1e-5, atol=1e-6)
    assert D.bias.grad is None or float(D.bias.grad) == 0

def test_d_softplus_losses():
    # d/dV [mean softplus(D(fake)) + mean softplus(-D(real))] = mean sigmoid(D(fake)) fake - mean sigmoid(-D(real)) real.
    G, D, loss, z, real, c = setup()
    run(loss, D, 'Dmain', z, real, c, gain=1)
    with torch.no_grad():
        fake = hand_G(G, z)
        d_fake = (fake * D.V).sum([1, 2, 3]) + D.bias
        d_real = (real * D.V).sum([1, 2, 3]) + D.bias
        expected_V = (torch.sigmoid(d_fake)[:, None, None, None] * fake).mean(0) - (torch.sigmoid(-d_real)[:, None, None, None] * real).mean(0)
        expected_b = torch.sigmoid(d_fake).mean() - torch.sigmoid(-d_real).mean()
    torch.testing.assert_close(D.V.grad, expected_V, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(D.bias.grad, expected_b, rtol=1e-5, atol=1e-6)

def test_g_softplus_loss():
    # G minimizes mean softplus(-D(G(z))): its gradient equals that of the hand-written composition.
    G, D, loss, z, real, c = setup()
    run(loss, G, 'Gmain', z, real, c, gain=3)
    A = G.mapping.A.detach().clone().requires_grad_(True)
    B = G.synthesis.B.detach().clone().requires_grad_(True)
    img = torch.einsum('nw,lwp->np', z @ A, B).reshape(-1, C, H, H)
    (3 * torch.nn.functional.softplus(-((img * D.V.detach()).sum([1, 2, 3]) + D.bias.detach())).mean()).backward()
    torch.testing.assert_close(G.mapping.A.grad, A.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(G.synthesis.B.grad, B.grad, rtol=1e-5, atol=1e-6)

def test_path_length_penalty_and_running_mean():
    # Half the batch (pl_batch_shrink 2); y = randn / sqrt(H W); J_w^T y = (B_l y)_l; length = sqrt(mean_l |B_l y|^2);
    # a = pl_mean + decay (mean(length) - pl_mean); penalty = (length - a)^2; loss = gain * weight * mean(penalty).
    G, D, loss, z, real, c = setup(pl_weight=2, pl_decay=0.01)
    loss.pl_mean.fill_(0.5)
    torch.manual_seed(7)
    run(loss, G, 'Greg', z, real, c, gain=4)
    torch.manual_seed(7) # the loss draws nothing before the path-length noise (no style mixing, no synthesis noise)
    n = 3
    y = torch.randn([n, C, H, H]) / np.sqrt(H * H)
    B = G.synthesis.B.detach().clone().requires_grad_(True)
    jty = torch.einsum('np,lwp->nlw', y.reshape(n, -1), B) # independent of w: the synthesis is linear
    lengths = jty.square().sum(2).mean(1).sqrt()
    pl_mean = 0.5 + 0.01 * (lengths.mean() - 0.5)
    (4 * 2 * (lengths - pl_mean).square().mean()).backward()
    assert float(loss.pl_mean) == pytest.approx(float(pl_mean.detach()), rel=1e-6)
    torch.testing.assert_close(G.synthesis.B.grad, B.grad, rtol=1e-5, atol=1e-6)
    assert G.mapping.A.grad is None or float(G.mapping.A.grad.abs().max()) == 0 # lengths do not depend on w here

@pytest.mark.parametrize('prob', [0, 0.5, 1])
def test_style_mixing_cutoff(prob):
    # With A = I, ws[:, l] = z for l < cutoff and the second latent after: the cutoff is uniform on 1..L-1 when mixing
    # (never 0: the first layer always takes the main latent; never L), and L (no mixing) with probability 1 - prob.
    G, D, loss, z, real, c = setup(style_mixing_prob=prob)
    with torch.no_grad():
        G.mapping.A.copy_(torch.eye(Z))
    cutoffs = []
    for _ in range(300):
        ws, = loss.run_G(z, c)[1:]
        from_z = (ws == z[:, None, :]).all(2).all(0) # [L]: layers that took the main latent
        cutoff = int(from_z.sum())
        assert from_z[:cutoff].all() and not from_z[cutoff:].any() # a prefix
        if cutoff < L:
            assert (ws[:, cutoff:] == ws[:, cutoff:cutoff + 1]).all() # one second latent for all later layers
        cutoffs.append(cutoff)
    counts = np.bincount(cutoffs, minlength=L + 1)
    assert counts[0] == 0
    expected_unmixed = (1 - prob) * 300
    assert abs(counts[L] - expected_unmixed) <= 4 * np.sqrt(300 * prob * (1 - prob))
    if prob > 0:
        assert all(counts[k] > 0 for k in range(1, L)) # every cutoff 1..L-1 occurs

#----------------------------------------------------------------------------

class ProjG(torch.nn.Module):
    """G(z) = z as an image times a per-pixel gain g (1 at the start: the fakes are the chosen z)."""
    def __init__(self, res):
        super().__init__()
        self.res = res
        self.g = torch.nn.Parameter(torch.ones([1, 1, res, res]))
    def forward(self, z, c, update_emas=False):
        return z.reshape(-1, 1, self.res, self.res) * self.g

class ProjD(torch.nn.Module):
    """The projected D's interface with logits = img P [N, K], the K columns standing for every scale's pixels;
    it keeps what it saw and checks that the loss hands it the loss's diffusion."""
    def __init__(self, res, num_logits, diffusion):
        super().__init__()
        self.P = torch.nn.Parameter(torch.randn([res * res, num_logits]) / res)
        self.diffusion = diffusion
        self.seen = []
    def forward(self, img, c, diffusion=None):
        assert diffusion is self.diffusion
        self.seen.append(img.detach())
        return img.flatten(1) @ self.P

def projected_setup(res=4, blur_init_sigma=0, blur_fade_kimg=0):
    torch.manual_seed(1)
    diffusion = object() # D's own business: the loss only passes it on
    G, D = ProjG(res).requires_grad_(False), ProjD(res, 5, diffusion).requires_grad_(False)
    loss = ProjectedGANLoss(device=torch.device('cpu'), G=G, D=D, diffusion=diffusion, blur_init_sigma=blur_init_sigma, blur_fade_kimg=blur_fade_kimg)
    z = torch.randn([8, res * res]) * 2
    real = torch.randn([8, 1, res, res]) * 2
    return G, D, loss, z, real, torch.zeros([8, 0])

def test_projected_hinge_both_margins():
    # Hinge: L_D = mean relu(1 + D(fake)) + mean relu(1 - D(real)), means over the images and all K logits (every
    # scale, every pixel). With D = x P: dL_D/dP = gain / (N K) (fake^T 1[D(fake) > -1] - real^T 1[D(real) < 1]).
    # The logits fall on both sides of both margins and of 0, so a hinge without its margin moves the gradient.
    G, D, loss, z, real, c = projected_setup()
    run(loss, D, 'Dmain', z, real, c, gain=3)
    fake64, real64, P = z.double(), real.flatten(1).double(), D.P.detach().double()
    d_fake, d_real = fake64 @ P, real64 @ P
    for logits, margin in [(d_fake, -1), (d_real, 1)]:
        assert ((logits - margin).abs() < 1).float().mean() > 0.2 and ((logits - margin).abs() > 1).float().mean() > 0.2
        assert (logits.sign() != np.sign(margin)).any() and (logits.sign() == np.sign(margin)).any()
    N, K = d_fake.shape
    expected = 3 / (N * K) * (fake64.T @ (d_fake > -1).double() - real64.T @ (d_real < 1).double())
    torch.testing.assert_close(D.P.grad.double(), expected, rtol=1e-5, atol=1e-7)
    assert G.g.grad is None

def test_projected_g_raises_the_logits():
    # L_G = -mean D(G(z)): dL_G/dg_p = -gain / (N K) sum_n z_np sum_k P_pk, unclipped (no hinge for G).
    G, D, loss, z, real, c = projected_setup()
    run(loss, G, 'Gmain', z, real, c, gain=2)
    N, K = z.shape[0], D.P.shape[1]
    expected = -2 / (N * K) * z.double().sum(0) * D.P.detach().double().sum(1)
    torch.testing.assert_close(G.g.grad.double().flatten(), expected, rtol=1e-5, atol=1e-7)
    assert D.P.grad is None
    for phase in ['Greg', 'Dreg']: # no regularization
        run(loss, D, phase, z, real, c, gain=16)
        assert D.P.grad is None and G.g.grad.flatten().double().allclose(expected, rtol=1e-5)

def test_projected_blur():
    # Every image D sees (fakes in both phases, reals) is blurred with sigma = init (1 - cur_nimg / fade), the
    # kernel 2^-(x/sigma)^2 on |x| <= floor(3 sigma) normalized, zero padding: here a 2-d convolution in float64.
    for cur_nimg, sigma in [(0, 2.0), (500, 1.0), (1500, 0.0)]:
        G, D, loss, z, real, c = projected_setup(res=8, blur_init_sigma=2, blur_fade_kimg=1)
        for module, phase in [(G, 'Gmain'), (D, 'Dmain')]:
            module.requires_grad_(True)
            loss.accumulate_gradients(phase=phase, real_img=real, real_c=c, gen_z=z, gen_c=c, gain=1, cur_nimg=cur_nimg)
        expected = [z.reshape(-1, 1, 8, 8), z.reshape(-1, 1, 8, 8), real]
        if sigma > 0:
            r = int(np.floor(3 * sigma))
            f = 2.0 ** -(np.arange(-r, r + 1) / sigma) ** 2
            kernel = torch.from_numpy(np.outer(f, f) / f.sum() ** 2)[None, None]
            expected = [torch.nn.functional.conv2d(img.double(), kernel, padding=r) for img in expected]
        assert len(D.seen) == 3
        for seen, want in zip(D.seen, expected):
            torch.testing.assert_close(seen.double(), want.double(), rtol=1e-5, atol=1e-6)

#----------------------------------------------------------------------------

class DcG(torch.nn.Module):
    """DCGAN's interface, G(z, c) -> img, linear: img = z A."""
    def __init__(self):
        super().__init__()
        self.A = torch.nn.Parameter(torch.randn([Z, C * H * H]) * 0.5)
    def forward(self, z, c, update_emas=False):
        return (z @ self.A).reshape(-1, C, H, H)

class TimestepD(torch.nn.Module):
    """D(x_t, c, t) = <V, x_t> + bias + u t: linear in the image and in the timestep it is given."""
    def __init__(self):
        super().__init__()
        self.V = torch.nn.Parameter(torch.randn([C, H, H]) * 0.5)
        self.bias = torch.nn.Parameter(torch.tensor(0.1))
        self.u = torch.nn.Parameter(torch.tensor(0.05))
    def forward(self, img, c, t, update_emas=False):
        return (img * self.V).sum([1, 2, 3])[:, None] + self.bias + self.u * t.to(torch.float32)

class ScaleDiffusion:
    """A stand-in diffusion: x_t = SCALE x with the timesteps 1..N of the batch, so that R1 through it is SCALE^2 |V|^2."""
    SCALE = 0.6
    def __call__(self, img):
        return img * self.SCALE, torch.arange(1, img.shape[0] + 1)[:, None]

def dcgan_setup(**loss_kwargs):
    torch.manual_seed(2)
    G, D = DcG().requires_grad_(False), TimestepD().requires_grad_(False)
    loss = DCGANLoss(device=torch.device('cpu'), G=G, D=D, diffusion=ScaleDiffusion(), **loss_kwargs)
    return G, D, loss, torch.randn([6, Z]), torch.randn([6, C, H, H]), torch.zeros([6, 0])

def dcgan_hand(G, D, z, real):
    """(fake, t, D(fake), D(real)) in float64: D of the diffused images, x_t = 0.6 x, t = 1..N."""
    s, V = ScaleDiffusion.SCALE, D.V.detach().double()
    fake = (z.double() @ G.A.detach().double()).reshape(-1, C, H, H)
    t = torch.arange(1, z.shape[0] + 1, dtype=torch.float64)
    logit = lambda x: s * (x * V).sum([1, 2, 3]) + float(D.bias) + float(D.u) * t
    return fake, t, logit(fake), logit(real.double())

def dcgan_expected_D(G, D, z, real, gain):
    """Gradients of gain (mean softplus(D(fake)) + mean softplus(-D(real))) w.r.t. V, bias and u, by hand."""
    fake, t, d_fake, d_real = dcgan_hand(G, D, z, real)
    pf, pr = torch.sigmoid(d_fake), torch.sigmoid(-d_real)
    V = gain * ScaleDiffusion.SCALE * ((pf[:, None, None, None] * fake).mean(0) - (pr[:, None, None, None] * real.double()).mean(0))
    return [(D.V, V), (D.bias, gain * (pf.mean() - pr.mean())), (D.u, gain * ((pf * t).mean() - (pr * t).mean()))]

@pytest.mark.parametrize('phase', ['Dmain', 'Dboth'])
def test_dcgan_d_loss_through_the_diffusion(phase):
    # L_D = mean softplus(D(x_t fake, t)) + mean softplus(-D(x_t real, t)); no R1 by default (Dboth = Dmain).
    G, D, loss, z, real, c = dcgan_setup()
    run(loss, D, phase, z, real, c, gain=2)
    for param, expected in dcgan_expected_D(G, D, z, real, gain=2):
        torch.testing.assert_close(param.grad.double(), expected, rtol=1e-5, atol=1e-7)

def test_dcgan_g_loss_through_the_diffusion():
    # L_G = mean softplus(-D(x_t fake, t)): dL/dA = z^T (-sigmoid(-D(fake)) s V) / N.
    G, D, loss, z, real, c = dcgan_setup()
    run(loss, G, 'Gboth', z, real, c, gain=3)
    _fake, _t, d_fake, _d_real = dcgan_hand(G, D, z, real)
    dimg = -torch.sigmoid(-d_fake)[:, None] * ScaleDiffusion.SCALE * D.V.detach().double().flatten()[None]
    torch.testing.assert_close(G.A.grad.double(), 3 * z.double().T @ dimg / z.shape[0], rtol=1e-5, atol=1e-7)

def test_dcgan_r1_off_by_default_and_through_the_diffusion():
    # DCGAN has no R1: Dreg computes nothing. With r1_gamma: gamma/2 |d D(s x)/dx|^2 = gamma/2 s^2 |V|^2 per image,
    # so dV = gain gamma s^2 V and nothing reaches bias or u.
    G, D, loss, z, real, c = dcgan_setup()
    run(loss, D, 'Dreg', z, real, c, gain=16)
    assert all(p.grad is None for p in D.parameters())
    G, D, loss, z, real, c = dcgan_setup(r1_gamma=0.3)
    run(loss, D, 'Dreg', z, real, c, gain=16)
    torch.testing.assert_close(D.V.grad, 16 * 0.3 * ScaleDiffusion.SCALE ** 2 * D.V.detach(), rtol=1e-5, atol=1e-7)
    assert all(p.grad is None or float(p.grad) == 0 for p in [D.bias, D.u])

@pytest.mark.parametrize('cfg', ['dcgan', 'dcgan_demo'])
def test_dcgan_presets_reach_the_loss(tmp_path, cfg):
    # dcgan.yaml: no R1 (gamma 0), so no D reg phase: the loss built from the resolved preset as the loop builds it
    # runs Dboth as the plain D loss, by hand as in test_dcgan_d_loss_through_the_diffusion.
    import train
    from tests.test_train import parse_opts, write_pngs
    from training import training_loop
    c, _desc = train.build_config(parse_opts('--outdir', 'unused', '--data', write_pngs(tmp_path, [32] * 2), '--cfg', cfg))
    G, D, _loss, z, real, c_ = dcgan_setup()
    loss = dnnlib.util.construct_class_by_name(device=torch.device('cpu'), G=G, D=D, diffusion=ScaleDiffusion(), **c.loss_kwargs)
    phases = training_loop.make_phases(modules=dict(G=G, D=D), opt_kwargs=c.opt_kwargs, reg_intervals=c.reg_intervals)
    assert [(phase.name, phase.interval) for phase in phases] == [('Gboth', 1), ('Dboth', 1)]
    run(loss, D, 'Dboth', z, real, c_, gain=1)
    for param, expected in dcgan_expected_D(G, D, z, real, gain=1):
        torch.testing.assert_close(param.grad.double(), expected, rtol=1e-5, atol=1e-7)

"""DifGAN (training/networks_difgan.py, DifGANLoss in training/loss.py): the unrolled generator against a loop of
its step written out, the eta-weighted losses against their closed form on tiny tensors, gradients through every
step, the eta schedules and their bad values."""

import numpy as np
import pytest
import torch

import dnnlib
from training import networks_difgan
from training.loss import DifGANLoss, difgan_eta

#----------------------------------------------------------------------------

class LinearD(torch.nn.Module):
    """D(img, c, t) = <w, img> + b: its gradients have a closed form."""
    def __init__(self, num_features):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn([num_features]) * 0.3)
        self.b = torch.nn.Parameter(torch.tensor(0.1))

    def forward(self, img, c, t, update_emas=False):
        assert torch.equal(t, torch.zeros_like(t)) # no diffusion: D sees every z_k at t = 0
        return (img.flatten(1) @ self.w + self.b)[:, None]

def tiny_generator(steps=3, t_embed='sinusoidal', c_dim=0):
    torch.manual_seed(0)
    return networks_difgan.Generator(c_dim=c_dim, img_resolution=16, img_channels=1, steps=steps, ngf=2, t_embed=t_embed, t_embed_dim=8, t_features=4)

def sigmoid(x):
    return 1 / (1 + np.exp(-x))

#----------------------------------------------------------------------------

@pytest.mark.parametrize('t_embed', ['sinusoidal', 'scalar', 'none'])
def test_unrolled_generator_equals_its_steps(t_embed):
    G = tiny_generator(t_embed=t_embed, c_dim=2)
    z = torch.randn([5, 256])
    c = torch.eye(2)[[0, 1, 1, 0, 1]]
    steps = G(z, c, return_steps=True)
    assert steps.shape == (5, 4, 1, 16, 16) and G.z_dim == 256
    assert torch.equal(steps[:, 0].flatten(1), z)
    x = z
    for k, t in enumerate([3, 2, 1]):
        # z_{t-1} = DCGAN G(z_t normalized per pixel over the batch, [label, embedding of t]) with step t's batch
        # norms, written out.
        embedding = {'sinusoidal': lambda: G.t_embed(torch.full([5, 1], t)), 'scalar': lambda: torch.full([5, 1], t / 3), 'none': lambda: torch.zeros([5, 0])}[t_embed]()
        normalized = (x - x.mean(0)) / (x.var(0, unbiased=False) + 1e-5).sqrt() # the step's input batch norm (training mode)
        h = G.net.convs[0](torch.cat([normalized, c, embedding], dim=1)[:, :, None, None])
        for norm, conv in zip(G.net.norms[t - 1], G.net.convs[1:]):
            h = conv(torch.relu(norm(h)))
        x = torch.tanh(h).flatten(1)
        assert torch.allclose(steps[:, k + 1].flatten(1), x, atol=1e-6), (t_embed, t)
    assert torch.allclose(G(z, c), steps[:, -1], atol=1e-6)

def test_each_step_its_own_batch_norm():
    # In eval mode every step normalizes with its own statistics: changing the statistics of step t = 1 (the last)
    # changes z_0 only; training mode updates the statistics of every step.
    G = tiny_generator()
    z = torch.randn([4, 256])
    c = torch.zeros([4, 0])
    all_norms = [*G.input_norms, *[norm for norms in G.net.norms for norm in norms]]
    before = [norm.running_mean.clone() for norm in all_norms]
    G(z, c)
    assert all(not torch.equal(norm.running_mean, old) for norm, old in zip(all_norms, before))
    G.eval()
    steps = G(z, c, return_steps=True)
    G.net.norms[0][0].running_mean += 1
    changed = G(z, c, return_steps=True)
    assert torch.equal(changed[:, :3], steps[:, :3]) and not torch.allclose(changed[:, 3], steps[:, 3])

def test_bad_generator_options():
    with pytest.raises(ValueError, match='at least 1'):
        tiny_generator(steps=0)
    with pytest.raises(ValueError, match='sinusoidal, scalar, none'):
        tiny_generator(t_embed='learned')

#----------------------------------------------------------------------------

@pytest.mark.parametrize('eta', [[0.2, 0.0, 0.6], 'uniform', 'final'])
def test_eta_weighted_losses_closed_form(eta):
    # With D = <w, x> + b, s_r = sigmoid(-D(x_n)), s_k = sigmoid(D(z_k,n)), eta normalized, gain g:
    # dL_D/db = g mean_n[-s_r + sum_k eta_k s_k], dL_D/dw = g mean_n[-s_r x_n + sum_k eta_k s_k z_k,n],
    # dL_G/db = g mean_n sum_k eta_k (-sigmoid(-D(z_k,n))); z_k from the unrolled G, D by hand.
    G = tiny_generator()
    D = LinearD(256)
    loss = DifGANLoss(device=torch.device('cpu'), G=G, D=D, eta=eta)
    real = torch.rand([4, 1, 16, 16]) * 2 - 1
    z = torch.randn([4, 256])
    c = torch.zeros([4, 0])
    weights = {'uniform': np.ones(3), 'final': np.array([0, 0, 1.0])}.get(eta, np.array(eta)) if isinstance(eta, str) else np.array(eta)
    weights = weights / weights.sum()
    with torch.no_grad():
        outputs = G(z, c, return_steps=True)[:, 1:].flatten(2).double().numpy()    # [N, 3, 256]: z_2, z_1, z_0
    w, b = D.w.detach().double().numpy(), D.b.item()
    x = real.flatten(1).double().numpy()
    d_fake = outputs @ w + b                                            # [N, 3]
    d_real = x @ w + b
    expected_D = 3 * np.mean(-sigmoid(-d_real) + (weights * sigmoid(d_fake)).sum(1))
    expected_D_w = 3 * np.mean(-sigmoid(-d_real)[:, None] * x + ((weights * sigmoid(d_fake))[:, :, None] * outputs).sum(1), axis=0)
    expected_G = 3 * np.mean((weights * -sigmoid(-d_fake)).sum(1))
    loss.accumulate_gradients('Dmain', real, c, z, c, gain=3, cur_nimg=0)
    assert float(D.b.grad) == pytest.approx(expected_D, rel=1e-5, abs=1e-7)
    np.testing.assert_allclose(D.w.grad.double().numpy(), expected_D_w, rtol=1e-5, atol=1e-7)
    D.b.grad = None
    loss.accumulate_gradients('Gmain', real, c, z, c, gain=3, cur_nimg=0)
    assert float(D.b.grad) == pytest.approx(expected_G, rel=1e-5, abs=1e-7)

@pytest.mark.parametrize('phase', ['Dreg', 'Dboth'])
def test_r1_closed_form(phase):
    # With D = <w, x> + b, dD/dx = w for every real image: R1 = ||w||^2, and gamma / 2 * ||w||^2 scaled by the
    # phase's gain gives dw = gain * gamma * w, db = 0. Dboth adds the eta-weighted D loss on top (its db checked
    # against the closed form of test_eta_weighted_losses_closed_form's Dmain run).
    G = tiny_generator()
    D = LinearD(256)
    gamma, gain = 0.3, 16
    real = torch.rand([4, 1, 16, 16]) * 2 - 1
    z = torch.randn([4, 256])
    c = torch.zeros([4, 0])
    DifGANLoss(device=torch.device('cpu'), G=G, D=D, eta='uniform').accumulate_gradients('Dmain', real, c, z, c, gain=gain, cur_nimg=0)
    main_w, main_b = D.w.grad.clone(), D.b.grad.clone()
    D.w.grad = D.b.grad = None
    DifGANLoss(device=torch.device('cpu'), G=G, D=D, eta='uniform', r1_gamma=gamma).accumulate_gradients(phase, real, c, z, c, gain=gain, cur_nimg=0)
    expected_w = gain * gamma * D.w.detach() + (main_w if phase == 'Dboth' else 0)
    expected_b = main_b if phase == 'Dboth' else torch.zeros([])
    grad_b = D.b.grad if D.b.grad is not None else torch.zeros([])     # R1 alone does not reach b
    assert torch.allclose(D.w.grad, expected_w, rtol=1e-5, atol=1e-6)
    assert torch.allclose(grad_b, expected_b, rtol=1e-5, atol=1e-7)

def test_d_sees_one_step_per_batch():
    # A D with batch norm must see each step's outputs as a batch of their own (their batch statistics show a
    # step's collapse); outputs with eta_k = 0 are not shown at all.
    G = tiny_generator()
    D = LinearD(256)
    batches = []
    D.register_forward_hook(lambda module, args, out: batches.append(args[0].shape[0]))
    z = torch.randn([5, 256])
    DifGANLoss(device=torch.device('cpu'), G=G, D=D, eta='uniform').accumulate_gradients('Gmain', None, torch.zeros([5, 0]), z, torch.zeros([5, 0]), gain=1, cur_nimg=0)
    assert batches == [5, 5, 5]
    batches.clear()
    DifGANLoss(device=torch.device('cpu'), G=G, D=D, eta=[1, 0, 1]).accumulate_gradients('Gmain', None, torch.zeros([5, 0]), z, torch.zeros([5, 0]), gain=1, cur_nimg=0)
    assert batches == [5, 5]

def test_gradients_reach_every_step():
    # Only z_0 in the loss ('final'): the gradient still flows back through every step to z_T.
    G = tiny_generator(steps=4)
    D = LinearD(256)
    loss = DifGANLoss(device=torch.device('cpu'), G=G, D=D, eta='final')
    outputs = []
    def keep(module, args, out):
        out.retain_grad()
        outputs.append(out)
    hook = G.net.register_forward_hook(keep)
    z = torch.randn([3, 256], requires_grad=True)
    loss.accumulate_gradients('Gmain', torch.zeros([3, 1, 16, 16]), torch.zeros([3, 0]), z, torch.zeros([3, 0]), gain=1, cur_nimg=0)
    hook.remove()
    assert len(outputs) == 4
    for k, out in enumerate(outputs):
        assert out.grad is not None and out.grad.abs().sum() > 0, f'step {k}'
    assert z.grad.abs().sum() > 0
    for name, param in G.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name

def test_preset_constants_reach_the_loss(tmp_path):
    # difgan.yaml: R1 gamma 0.5 every 16 minibatches, eta uniform. The loss built from the resolved preset as the
    # loop builds it (here over a 4-step G, the preset's steps), its phases from make_phases: equal weights 1/4 and
    # the reg phase's dw = 16 0.5 w.
    import train
    from tests.test_train import parse_opts, write_pngs
    from training import training_loop
    c, _desc = train.build_config(parse_opts('--outdir', 'unused', '--data', write_pngs(tmp_path, [16] * 2, channels=1), '--cfg', 'difgan'))
    G, D = tiny_generator(steps=c.network_kwargs.G.steps), LinearD(256)
    loss = dnnlib.util.construct_class_by_name(device=torch.device('cpu'), G=G, D=D, diffusion=None, **c.loss_kwargs)
    assert c.network_kwargs.G.steps == 4 and loss.eta == [0.25] * 4 and loss.active == [0, 1, 2, 3]
    phases = training_loop.make_phases(modules=dict(G=G, D=D), opt_kwargs=c.opt_kwargs, reg_intervals=c.reg_intervals)
    assert [(phase.name, phase.interval) for phase in phases] == [('Gboth', 1), ('Dmain', 1), ('Dreg', 16)]
    G.requires_grad_(False)
    loss.accumulate_gradients('Dreg', torch.rand([4, 1, 16, 16]), torch.zeros([4, 0]), torch.randn([4, 256]), torch.zeros([4, 0]), gain=phases[-1].interval, cur_nimg=0)
    torch.testing.assert_close(D.w.grad, 16 * 0.5 * D.w.detach(), rtol=1e-5, atol=1e-8)
    # --eta reaches it too (the loss's own default is uniform, so the preset's value alone cannot show it).
    c, _desc = train.build_config(parse_opts('--outdir', 'unused', '--data', str(tmp_path), '--cfg', 'difgan', '--eta', 'linear'))
    loss = dnnlib.util.construct_class_by_name(device=torch.device('cpu'), G=G, D=D, diffusion=None, **c.loss_kwargs)
    assert np.allclose(loss.eta, [0.1, 0.2, 0.3, 0.4])

#----------------------------------------------------------------------------

def test_eta_schedules():
    assert np.allclose(difgan_eta('uniform', 4), [0.25] * 4)
    assert np.allclose(difgan_eta('final', 3), [0, 0, 1])
    assert np.allclose(difgan_eta('linear', 3), [1 / 6, 2 / 6, 3 / 6])
    assert np.allclose(difgan_eta([2, 0, 2], 3), [0.5, 0, 0.5])

@pytest.mark.parametrize('eta,words', [([1, 1], '2 weights for 3 generator steps'), ([1, -1, 1], 'non-negative'), ([0, 0, 0], 'not all 0'), ('cosine', 'uniform, final, linear')])
def test_bad_eta(eta, words):
    with pytest.raises(ValueError, match=words):
        difgan_eta(eta, 3)

#----------------------------------------------------------------------------

"""Tests of the training loop's step arithmetic (training/training_loop.py: make_phases, run_phase) against closed
forms of Adam, as the official Diffusion-GAN loop computes them."""

import math

import pytest
import torch

from training import training_loop

#----------------------------------------------------------------------------

class _SplitLoss:
    """'Dmain' reaches both parameters of a Linear(1, 1); 'Dreg' reaches only its weight, as R1 never reaches D's
    output bias."""
    def __init__(self, module):
        self.module = module

    def accumulate_gradients(self, phase, real_img, real_c, gen_z, gen_c, gain, cur_nimg):
        x = torch.ones([1, 1])
        if phase == 'Dmain':
            self.module(x).sum().mul(gain).backward()
        else:
            self.module.weight.square().sum().mul(gain).backward()

def test_regularizer_that_misses_a_parameter_still_steps_it():
    # The official loop gives every parameter a gradient in every phase (its `x * 0 +` terms), so a lazy regularizer
    # that does not reach D's output bias still advances Adam's step count for it: the bias's next step is Adam's
    # closed form at step 2, lr * g / sqrt(v2 / (1 - beta2^2)) with v2 = (1 - beta2) g^2 (beta1 = 0), which is
    # lr * sqrt(1 - beta2^2) / sqrt(1 - beta2) = 1.4107 lr, not the lr of a first step.
    torch.manual_seed(0)
    D = torch.nn.Linear(1, 1)
    lr, beta2, reg_interval = 0.01, 0.99, 16
    adam = dict(class_name='torch.optim.Adam', lr=lr, betas=[0, beta2], eps=1e-8)
    phases = training_loop.make_phases(modules=dict(G=torch.nn.Linear(1, 1), D=D), opt_kwargs=dict(G=adam, D=adam), reg_intervals=dict(G=4, D=reg_interval))
    main, reg = [phase for phase in phases if phase.name in ('Dmain', 'Dreg')]
    loss = _SplitLoss(D)
    rounds = lambda: [(None, None, None, None)]
    bias_before = D.bias.detach().clone()
    training_loop.run_phase(phase=reg, loss=loss, rounds=rounds(), cur_nimg=0)
    assert torch.equal(D.bias.detach(), bias_before) # a zero gradient moves nothing...
    assert all(reg.opt.state[param]['step'] == 1 for param in D.parameters()) # ...but counts as a step
    training_loop.run_phase(phase=main, loss=loss, rounds=rounds(), cur_nimg=0)
    mb_ratio = reg_interval / (reg_interval + 1)
    lr_eff, beta2_eff = lr * mb_ratio, beta2 ** mb_ratio
    expected_step = lr_eff * math.sqrt(1 - beta2_eff ** 2) / math.sqrt(1 - beta2_eff) # g = 1 for the bias
    assert float(bias_before - D.bias.detach()) == pytest.approx(expected_step, rel=1e-5)

#----------------------------------------------------------------------------

def test_phase_that_computes_nothing_steps_nothing():
    # Path length off (pl_weight 0): the Greg phase still comes every 4 minibatches but backpropagates nothing, and
    # then, as in the official loop, Adam must not count a step for any parameter.
    G = torch.nn.Linear(1, 1)
    opt = dict(class_name='torch.optim.Adam', lr=0.01, betas=[0.0, 0.99], eps=1e-8)
    phases = {phase.name: phase for phase in training_loop.make_phases(modules=dict(G=G, D=torch.nn.Linear(1, 1)), opt_kwargs=dict(G=opt, D=opt), reg_intervals=dict(G=4, D=16))}
    class NoPathLength:
        def accumulate_gradients(self, phase, **kwargs):
            pass
    training_loop.run_phase(phase=phases['Greg'], loss=NoPathLength(), rounds=[(None, None, None, None)], cur_nimg=0)
    assert all(len(phases['Greg'].opt.state[param]) == 0 for param in G.parameters())

def test_lazy_regularization_lr_and_betas():
    # Lazy regularization every k minibatches: lr x k/(k+1) and betas ^ k/(k+1), one optimizer for main and reg.
    G, D = torch.nn.Linear(1, 1), torch.nn.Linear(1, 1)
    opt = dict(class_name='torch.optim.Adam', lr=0.0025, betas=[0.0, 0.99], eps=1e-8)
    phases = {phase.name: phase for phase in training_loop.make_phases(modules=dict(G=G, D=D), opt_kwargs=dict(G=opt, D=opt), reg_intervals=dict(G=4, D=16))}
    assert {name: phase.interval for name, phase in phases.items()} == dict(Gmain=1, Greg=4, Dmain=1, Dreg=16)
    for name, k in [('G', 4), ('D', 16)]:
        assert phases[name + 'main'].opt is phases[name + 'reg'].opt
        group = phases[name + 'main'].opt.param_groups[0]
        assert group['lr'] == pytest.approx(0.0025 * k / (k + 1), rel=1e-12)
        assert group['betas'][0] == 0 and group['betas'][1] == pytest.approx(0.99 ** (k / (k + 1)), rel=1e-12)
    both = training_loop.make_phases(modules=dict(G=G, D=D), opt_kwargs=dict(G=opt, D=opt), reg_intervals=dict(G=None, D=None))
    assert [(phase.name, phase.interval, phase.opt.param_groups[0]['lr']) for phase in both] == [('Gboth', 1, 0.0025), ('Dboth', 1, 0.0025)]

def test_ema_half_life_and_rampup():
    # After ema_kimg * 1000 images the old average weighs one half; with ramp-up r the half-life is min(ema_kimg * 1000,
    # cur_nimg * r) images. Buffers are copied, not averaged.
    G, G_ema = torch.nn.BatchNorm1d(1).requires_grad_(False), torch.nn.BatchNorm1d(1).requires_grad_(False)
    with torch.no_grad():
        G.weight.fill_(0)
        G_ema.weight.fill_(1)
        G.running_mean.fill_(3)
    for _ in range(10): # 10 x 100 images = ema_kimg
        training_loop.update_ema(G_ema=G_ema, G=G, batch_size=100, ema_kimg=1, ema_rampup=None, cur_nimg=10 ** 6)
    assert float(G_ema.weight) == pytest.approx(0.5, rel=1e-5) and float(G_ema.running_mean) == 3
    G_ema.weight.data.fill_(1)
    training_loop.update_ema(G_ema=G_ema, G=G, batch_size=100, ema_kimg=10, ema_rampup=0.05, cur_nimg=2000) # half-life 100 images
    assert float(G_ema.weight) == pytest.approx(0.5, rel=1e-5)
    G_ema.weight.data.fill_(1)
    training_loop.update_ema(G_ema=G_ema, G=G, batch_size=100, ema_kimg=10, ema_rampup=0.05, cur_nimg=0) # nothing seen yet: copy G
    assert float(G_ema.weight) == pytest.approx(0, abs=1e-12)

#----------------------------------------------------------------------------

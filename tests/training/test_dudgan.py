"""DuDGAN (training/networks_dudgan.py, DuDGANLoss and supcon_loss in training/loss.py) against hand computations:
the supervised contrastive loss, the classifier's outputs, the G and C loss mixtures, C's diffusion schedule."""

import numpy as np
import pytest
import torch

from training.diffusion import Diffusion
from training.loss import DuDGANLoss, StyleGAN2Loss, supcon_loss
from training.networks_dudgan import Classifier
from training.networks_stylegan2 import Discriminator, Generator

#----------------------------------------------------------------------------

def supcon_reference(features, labels, temperature, base_temperature):
    """Every view of every sample an anchor; its positives the other views with its label; anchors without
    positives left out. Plain loops in float64."""
    n, v, _ = features.shape
    anchors = [(i, a) for a in range(v) for i in range(n)]
    losses = []
    for i, a in anchors:
        others = [(j, b) for j, b in anchors if (j, b) != (i, a)]
        denominator = sum(np.exp(features[i, a] @ features[j, b] / temperature) for j, b in others)
        positives = [(j, b) for j, b in others if labels[j] == labels[i]]
        if not positives:
            continue
        log_probs = [features[i, a] @ features[j, b] / temperature - np.log(denominator) for j, b in positives]
        losses.append(-(temperature / base_temperature) * np.mean(log_probs))
    return np.mean(losses)

@pytest.mark.parametrize('views,labels,temperature,base', [(2, [0, 1, 0, 2, 1], 0.07, 0.07), (2, [3, 3, 3, 3], 0.5, 0.07), (1, [0, 1, 0, 2, 1], 0.1, 0.1), (3, [1, 0], 0.2, 0.2)])
def test_supcon_matches_hand_computation(views, labels, temperature, base):
    # One view with a label seen once: that anchor has no positive and is left out of the mean.
    rnd = np.random.RandomState(0)
    features = rnd.randn(len(labels), views, 6)
    features /= np.linalg.norm(features, axis=2, keepdims=True)
    loss = supcon_loss(torch.from_numpy(features), torch.tensor(labels), temperature, base)
    np.testing.assert_allclose(loss.item(), supcon_reference(features, labels, temperature, base), rtol=1e-10)

def test_supcon_gradient_is_finite():
    # The self-similarities are masked with -inf; their gradient must not turn into NaN.
    features = torch.nn.functional.normalize(torch.randn([4, 2, 5]), dim=2).requires_grad_(True)
    supcon_loss(features, torch.tensor([0, 1, 0, 1])).backward()
    assert torch.isfinite(features.grad).all() and features.grad.abs().sum() > 0

#----------------------------------------------------------------------------

def tiny_classifier(**kwargs):
    torch.manual_seed(0)
    return Classifier(c_dim=3, img_resolution=16, img_channels=1, channel_base=128, channel_max=8, proj_dim=6, epilogue_kwargs=dict(mbstd_group_size=1), **kwargs)

def test_classifier_outputs():
    C = tiny_classifier()
    img = torch.randn([4, 1, 16, 16])
    projection, logits = C(img, torch.tensor([0, 5, 9, 30]))
    assert projection.shape == (4, 6) and logits.shape == (4, 3)
    torch.testing.assert_close(projection.norm(dim=1), torch.ones(4))
    torch.testing.assert_close(logits.norm(dim=1), torch.ones(4))
    # The logits see C's own timestep, the projection does not (as in the public code).
    other_projection, other_logits = C(img, torch.tensor([1, 5, 9, 30]))
    assert torch.equal(projection, other_projection)
    assert not torch.allclose(logits[0], other_logits[0]) and torch.equal(logits[1:], other_logits[1:])

def test_classifier_needs_labels():
    with pytest.raises(ValueError, match='c_dim=0'):
        Classifier(c_dim=0, img_resolution=16, img_channels=1)

#----------------------------------------------------------------------------
# DuDGANLoss on tiny networks.

def tiny_dudgan(**loss_kwargs):
    torch.manual_seed(0)
    G = Generator(z_dim=8, c_dim=3, w_dim=8, img_resolution=16, img_channels=1, mapping_kwargs=dict(num_layers=1), channel_base=128, channel_max=8, use_noise=False)
    D = Discriminator(c_dim=3, img_resolution=16, img_channels=1, channel_base=128, channel_max=8, epilogue_kwargs=dict(mbstd_group_size=1))
    C = tiny_classifier()
    for module in [G, D, C]:
        module.requires_grad_(False)
    diffusion_C = Diffusion(t_max=30, noise_sd=0.025, p_step=0.1)
    diffusion_C.adapt(None, 32)
    kwargs = dict(dict(r1_gamma=0, style_mixing_prob=0, pl_weight=0), **loss_kwargs)
    return DuDGANLoss(device=torch.device('cpu'), G=G, D=D, C=C, diffusion_C=diffusion_C, **kwargs), G, D, C

def batch(seed=1):
    torch.manual_seed(seed)
    return dict(real_img=torch.rand([4, 1, 16, 16]) * 2 - 1, real_c=torch.eye(3)[[0, 1, 0, 2]], gen_z=torch.randn([4, 8]), gen_c=torch.eye(3)[[1, 1, 2, 0]])

def grads_of(loss, phase, module, seed=2):
    data = batch()
    module.requires_grad_(True)
    torch.manual_seed(seed)
    loss.accumulate_gradients(phase=phase, gain=1, cur_nimg=0, **data)
    grads = [p.grad.clone() for p in module.parameters()]
    module.requires_grad_(False)
    module.zero_grad(set_to_none=True)
    return grads

def test_g_loss_mixture():
    # G: (1 - w) x adversarial + w x SupCon of C's projections of the fakes; w = 0 is StyleGAN2Loss exactly.
    loss, G, D, _C = tiny_dudgan(lw_G_supcon=0)
    plain = StyleGAN2Loss(device=torch.device('cpu'), G=G, D=D, r1_gamma=0, style_mixing_prob=0, pl_weight=0)
    for a, b in zip(grads_of(loss, 'Gmain', G), grads_of(plain, 'Gmain', G)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    adversarial = grads_of(plain, 'Gmain', G)
    # The contrastive term alone, by hand: C's SupCon of the fakes (the same torch RNG state: nothing before it draws).
    data = batch()
    G.requires_grad_(True)
    torch.manual_seed(2)
    gen_img, _ws = loss.run_G(data['gen_z'], data['gen_c'])
    loss.contrastive_loss(gen_img, data['gen_c']).backward()
    supcon = [p.grad.clone() for p in G.parameters()]
    G.requires_grad_(False)
    G.zero_grad(set_to_none=True)
    for w in [0.05, 0.5]:
        weighted, G_w, _D, _C = tiny_dudgan(lw_G_supcon=w)
        for g, g_adv, g_sup in zip(grads_of(weighted, 'Gmain', G_w), adversarial, supcon):
            torch.testing.assert_close(g, (1 - w) * g_adv + w * g_sup, rtol=1e-4, atol=1e-7)
    assert any(g.abs().max() > 1e-6 for g in supcon)

def test_c_loss_mixture():
    # C's phase: 0.95 x SupCon of two diffused views of the reals + 0.05 x cross-entropy of the logits of a third.
    loss, _G, _D, C = tiny_dudgan()
    data = batch()
    C.requires_grad_(True)
    torch.manual_seed(2)
    projection, _ = C(*loss.diffusion_C(torch.cat([data['real_img'], data['real_img']])))
    contrastive = supcon_loss(torch.stack(projection.chunk(2), dim=1), torch.tensor([0, 1, 0, 2]), 0.07, 0.07)
    _, logits = C(*loss.diffusion_C(data['real_img']))
    (0.95 * contrastive + 0.05 * torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 0, 2]))).backward()
    expected = [p.grad.clone() for p in C.parameters()]
    C.zero_grad(set_to_none=True)
    C.requires_grad_(False)
    for a, b in zip(grads_of(loss, 'Cboth', C), expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)

def test_c_diffusion_schedule():
    # p rises by p_step at every adaptation whatever r_d is, up to 1; T = t_min + round(p (t_max - t_min)).
    diffusion = Diffusion(t_min=10, t_max=300, p_step=0.3, target=0.6)
    for k, r_d in enumerate([1.0, -1.0, 0.6, 1.0], start=1):
        diffusion.adapt(r_d, 256)
        assert diffusion.p == pytest.approx(min(0.3 * k, 1)) and diffusion.T == 10 + round(min(0.3 * k, 1) * 290)

#----------------------------------------------------------------------------

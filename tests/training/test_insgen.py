"""InsGen's instance discrimination (training/insgen.py, InsGenLoss in training/loss.py) against hand computations:
InfoNCE, the key encoder's momentum update, the queue as a ring buffer, the head's order of operations, and the loss
terms and where their gradients go."""

import copy

import numpy as np
import pytest
import torch

from torch_utils import misc
from training import insgen
from training.loss import InsGenLoss, StyleGAN2Loss
from training.networks_stylegan2 import Discriminator, Generator

#----------------------------------------------------------------------------

def unit(x, dim):
    return x / np.linalg.norm(x, axis=dim, keepdims=True)

def info_nce_reference(q, k, queue, temperature):
    """Mean over queries of -log(exp(q.k / tau) / (exp(q.k / tau) + sum_j exp(q.queue_j / tau))), in float64."""
    losses = []
    for qi, ki in zip(q, k):
        positive = np.exp(qi @ ki / temperature)
        negatives = sum(np.exp(qi @ queue[:, j] / temperature) for j in range(queue.shape[1]))
        losses.append(-np.log(positive / (positive + negatives)))
    return np.mean(losses)

def mlp_reference(layers, x):
    """The head's MLP in float64 from its state: Linear, ReLU, Linear."""
    w0, b0, w2, b2 = [layers[key].double().numpy() for key in ['0.weight', '0.bias', '2.weight', '2.bias']]
    return np.maximum(x @ w0.T + b0, 0) @ w2.T + b2

#----------------------------------------------------------------------------

@pytest.mark.parametrize('temperature', [0.2, 0.07, 1.0])
def test_info_nce_matches_hand_computation(temperature):
    rnd = np.random.RandomState(0)
    q, k, queue = unit(rnd.randn(5, 8), 1), unit(rnd.randn(5, 8), 1), unit(rnd.randn(8, 7), 0)
    loss = insgen.info_nce(*[torch.from_numpy(x) for x in [q, k, queue]], temperature=temperature)
    np.testing.assert_allclose(loss.item(), info_nce_reference(q, k, queue, temperature), rtol=1e-12)

def test_momentum_update_matches_formula():
    torch.manual_seed(0)
    target, source = torch.nn.Linear(3, 4), torch.nn.Linear(3, 4)
    before = {name: value.clone() for name, value in target.state_dict().items()}
    misc.momentum_update(target, source, 0.9)
    for name, value in target.state_dict().items():
        torch.testing.assert_close(value, 0.9 * before[name] + 0.1 * source.state_dict()[name], rtol=0, atol=1e-7)

@pytest.mark.parametrize('batches,start', [([3, 3, 3], 0), ([4, 9, 2], 1), ([5], 5), ([12, 1], 2)])
def test_queue_is_a_ring_buffer(batches, start):
    # Keys written one at a time at the pointer, which wraps around: a batch longer than the queue leaves its last
    # queue_size keys. start = queue_size is the pointer the fork leaves after exactly filling its queue.
    head = insgen.ContrastiveHead(in_features=4, queue_size=5, out_features=3)
    head.queue_ptr[0] = start
    expected = head.queue.clone().numpy()
    ptr = start % 5
    rnd = np.random.RandomState(1)
    for n in batches:
        keys = rnd.randn(n, 3).astype(np.float32)
        for key in keys:
            expected[:, ptr] = key
            ptr = (ptr + 1) % 5
        head.enqueue(torch.from_numpy(keys))
        np.testing.assert_array_equal(head.queue.numpy(), expected)
        assert int(head.queue_ptr) == ptr

@pytest.mark.parametrize('enqueue', ['keys', 'queries', None])
def test_head_forward_step_by_step(enqueue):
    # One call: momentum update of the key encoder first, keys from the updated encoder, queries from the MLP, the
    # loss against the queue as it was, then the enqueue; features pooled over space.
    torch.manual_seed(0)
    head = insgen.ContrastiveHead(in_features=6, queue_size=7, out_features=4, temperature=0.2, momentum=0.9)
    with torch.no_grad():
        for param in head.momentum_mlp.parameters():
            param.add_(torch.randn_like(param)) # a key encoder that differs from the MLP
    mlp = {name: value.clone() for name, value in head.mlp.state_dict().items()}
    key_mlp = {name: 0.9 * value + 0.1 * mlp[name] for name, value in head.momentum_mlp.state_dict().items()}
    queue, ptr = head.queue.clone().double().numpy(), int(head.queue_ptr)
    feat_q, feat_k = torch.randn([3, 6, 2, 2]), torch.randn([3, 6, 2, 2])

    loss = head(feat_q, feat_k, enqueue=enqueue)

    pooled_q, pooled_k = feat_q.double().mean([2, 3]).numpy(), feat_k.double().mean([2, 3]).numpy()
    q, k = unit(mlp_reference(mlp, pooled_q), 1), unit(mlp_reference(key_mlp, pooled_k), 1)
    np.testing.assert_allclose(loss.item(), info_nce_reference(q, k, queue, 0.2), rtol=1e-5)
    for name, value in head.momentum_mlp.state_dict().items():
        torch.testing.assert_close(value, key_mlp[name])
    enqueued = {'keys': k, 'queries': unit(mlp_reference(key_mlp, pooled_q), 1), None: None}[enqueue]
    if enqueued is not None:
        queue[:, ptr:ptr + 3] = enqueued.T
    np.testing.assert_allclose(head.queue.double().numpy(), queue, rtol=1e-5, atol=1e-6)
    assert int(head.queue_ptr) == (ptr + (0 if enqueue is None else 3)) % 7

def test_head_gradient_reaches_mlp_and_queries_only():
    torch.manual_seed(0)
    head = insgen.ContrastiveHead(in_features=6, queue_size=7).requires_grad_(True)
    feat_q, feat_k = torch.randn([3, 6], requires_grad=True), torch.randn([3, 6], requires_grad=True)
    head(feat_q, feat_k).backward()
    assert all(param.grad is not None and param.grad.abs().sum() > 0 for param in head.mlp.parameters())
    assert all(not param.requires_grad and param.grad is None for param in head.momentum_mlp.parameters())
    assert feat_q.grad.abs().sum() > 0 and feat_k.grad is None

def test_bad_queue_size():
    with pytest.raises(ValueError, match='queue_size=0'):
        insgen.ContrastiveHead(in_features=4, queue_size=0)

#----------------------------------------------------------------------------
# InsGenLoss on tiny StyleGAN2 networks, without diffusion.

def tiny_insgen(**loss_kwargs):
    torch.manual_seed(0)
    G = Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=1, mapping_kwargs=dict(num_layers=1), channel_base=128, channel_max=8, use_noise=False)
    D = Discriminator(c_dim=0, img_resolution=16, img_channels=1, channel_base=128, channel_max=8, epilogue_kwargs=dict(mbstd_group_size=1))
    heads = dict(DHead=insgen.ContrastiveHead(in_features=8, queue_size=6), GHead=insgen.ContrastiveHead(in_features=8, queue_size=6))
    for module in [G, D, *heads.values()]:
        module.requires_grad_(False)
    kwargs = dict(dict(r1_gamma=0, style_mixing_prob=0, pl_weight=0), **loss_kwargs)
    loss = InsGenLoss(device=torch.device('cpu'), G=G, D=D, D_ema=copy.deepcopy(D).eval(), **heads, **kwargs)
    return loss, G, D, heads

def grads_of(phase, loss, modules, seed=1):
    torch.manual_seed(seed)
    real, z, c = torch.rand([4, 1, 16, 16]) * 2 - 1, torch.randn([4, 8]), torch.zeros([4, 0])
    for module in modules:
        module.requires_grad_(True)
    loss.accumulate_gradients(phase=phase, real_img=real, real_c=c, gen_z=z, gen_c=c, gain=1, cur_nimg=0)
    grads = [[None if p.grad is None else p.grad.clone() for p in module.parameters()] for module in modules]
    for module in modules:
        module.requires_grad_(False)
        module.zero_grad(set_to_none=True)
    return grads

def test_d_phase_gradients_go_to_d_and_both_heads():
    loss, G, D, heads = tiny_insgen()
    ptrs = [int(head.queue_ptr) for head in heads.values()]
    D_grads, DHead_grads, GHead_grads = grads_of('Dmain', loss, [D, heads['DHead'], heads['GHead']])
    assert all(g is not None for g in D_grads)
    for head, grads in [(heads['DHead'], DHead_grads), (heads['GHead'], GHead_grads)]:
        assert [g is not None and g.abs().sum() > 0 for g in grads] == [True] * 4 + [False] * 4
    # Each head enqueued the 4 keys of the minibatch.
    assert [int(head.queue_ptr) for head in heads.values()] == [(ptr + 4) % 6 for ptr in ptrs]

def test_loss_weights_scale_the_instance_terms():
    # With both weights 0 the D gradient is StyleGAN2Loss's exactly; the instance terms change it linearly in their weights.
    reference = StyleGAN2Loss(device=torch.device('cpu'), G=tiny_insgen()[1], D=tiny_insgen()[2], r1_gamma=0, style_mixing_prob=0, pl_weight=0)
    plain = grads_of('Dmain', reference, [reference.D])[0]
    loss, _G, D, _heads = tiny_insgen(lw_real_cl=0, lw_fake_cl=0)
    for a, b in zip(grads_of('Dmain', loss, [D])[0], plain):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    by_weight = {}
    for weight in [1.0, 2.0]:
        loss, _G, D, _heads = tiny_insgen(lw_real_cl=weight, lw_fake_cl=weight)
        by_weight[weight] = grads_of('Dmain', loss, [D])[0]
    for g0, g1, g2 in zip(plain, by_weight[1.0], by_weight[2.0]):
        torch.testing.assert_close(g2 - g0, 2 * (g1 - g0), rtol=1e-4, atol=1e-6)
    assert any((g1 - g0).abs().max() > 1e-4 for g0, g1 in zip(plain, by_weight[1.0]))

def test_g_phase_fake_instance_term():
    # G's loss gains lw_fake_cl_on_g times GHead's InfoNCE of its fakes (no enqueue); --no_cl_on_g removes it.
    plain_loss, G, _D, _heads = tiny_insgen(cl_on_g=False)
    plain = grads_of('Gmain', plain_loss, [G])[0]
    grads = {}
    for weight in [0.1, 0.3]:
        loss, G, _D, heads = tiny_insgen(lw_fake_cl_on_g=weight)
        ptr = int(heads['GHead'].queue_ptr)
        [grads[weight]] = grads_of('Gmain', loss, [G])
        assert int(heads['GHead'].queue_ptr) == ptr
    for g0, g1, g3 in zip(plain, grads[0.1], grads[0.3]):
        torch.testing.assert_close(g3 - g0, 3 * (g1 - g0), rtol=1e-3, atol=1e-7)
    assert any((g1 - g0).abs().max() > 0 for g0, g1 in zip(plain, grads[0.1]))

#----------------------------------------------------------------------------

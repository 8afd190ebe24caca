"""The CPU fast path of the StyleGAN2 networks computes what the reference path computes: channels_last activations
(cpu_channels_last), demodulation by a matmul (demod_matmul) and the 'auto' choice between fused and unfused
modulated convolutions in float32, against the contiguous, official-demodulation and explicitly fused / unfused
networks with the same weights (modulated_conv2d itself is checked against a per-sample loop in
test_networks_stylegan2.py); bfloat16 blocks (cpu_bf16) where
the mixed-precision rule puts them, within bfloat16's rounding."""

import pytest
import torch

from training import networks_stylegan2 as net

#----------------------------------------------------------------------------

def make_pair(cls, shared=None, **kwargs):
    """(reference, fast): the same weights, the reference without the given CPU fast-path block kwargs; shared:
    constructor kwargs of both."""
    torch.manual_seed(0)
    common = dict(img_resolution=16, img_channels=3, c_dim=3, channel_base=256, channel_max=32, mapping_kwargs=dict(num_layers=2), **(shared or {}))
    if cls is net.Generator:
        common.update(z_dim=8, w_dim=8)
        ref, fast = cls(**common), cls(**common, **kwargs)
    else:
        common.update(epilogue_kwargs=dict(mbstd_group_size=2))
        ref, fast = cls(**common), cls(**common, block_kwargs=kwargs)
    fast.load_state_dict(ref.state_dict())
    return ref, fast

def assert_close_rel(a, b, rtol):
    """|a - b| <= rtol * max|b|, elementwise."""
    assert a.shape == b.shape and a.dtype == b.dtype
    assert (a - b).abs().max() <= rtol * b.abs().max(), f'max diff {(a - b).abs().max():.3g} vs scale {b.abs().max():.3g}'

def block_inputs(module):
    """Record the input activations of every block's first conv layer, in forward order."""
    seen = []
    for block in module.modules():
        if isinstance(block, (net.SynthesisBlock, net.DiscriminatorBlock)):
            block.conv1.register_forward_hook(lambda mod, args, out, res=block.resolution: seen.append((res, args[0])))
    return seen

def labels(n):
    return torch.nn.functional.one_hot(torch.arange(n) % 3, 3).float()

#----------------------------------------------------------------------------

def test_channels_last_and_demod_matmul_generator_same_numbers():
    G_ref, G_fast = make_pair(net.Generator, cpu_channels_last=True, demod_matmul=True)
    seen = block_inputs(G_fast)
    z, c = torch.randn([4, 8]), labels(4)
    for G in [G_ref, G_fast]:
        G.train()
    img_ref = G_ref(z, c, noise_mode='const', fused_modconv=False)
    img_fast = G_fast(z, c, noise_mode='const', fused_modconv=False)
    assert all(x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous() for _res, x in seen)
    assert_close_rel(img_fast, img_ref, 1e-5)

    # Gradients of every parameter.
    grads_ref = torch.autograd.grad(img_ref.square().sum(), list(G_ref.parameters()), allow_unused=True)
    grads_fast = torch.autograd.grad(img_fast.square().sum(), list(G_fast.parameters()), allow_unused=True)
    for (name, _), g_ref, g_fast in zip(G_ref.named_parameters(), grads_ref, grads_fast):
        if g_ref is not None:
            assert_close_rel(g_fast, g_ref, 1e-5), name

def test_channels_last_discriminator_same_numbers_and_r1():
    D_ref, D_fast = make_pair(net.Discriminator, cpu_channels_last=True)
    seen = block_inputs(D_fast)
    img, c, t = torch.randn([4, 3, 16, 16]), labels(4), torch.tensor([0, 3, 10, 50])
    outs, r1s = [], []
    for D in [D_ref, D_fast]:
        x = img.clone().requires_grad_(True)
        logits = D(x, c, t)
        r1_grad, = torch.autograd.grad(logits.sum(), x, create_graph=True)
        param_grads = torch.autograd.grad(r1_grad.square().sum() + logits.sum(), list(D.parameters()))
        outs.append(logits.detach())
        r1s.append((r1_grad.detach(), param_grads))
    assert any(x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous() for _res, x in seen)
    assert_close_rel(outs[1], outs[0], 1e-5)
    assert_close_rel(r1s[1][0], r1s[0][0], 1e-5)
    for g_fast, g_ref in zip(r1s[1][1], r1s[0][1]):
        assert_close_rel(g_fast, g_ref, 1e-5)

#----------------------------------------------------------------------------

def test_fused_modconv_auto():
    # 'auto': single images fused (the official tools' numbers), CPU batches and training unfused.
    _, G = make_pair(net.Generator, fused_modconv_default='auto', demod_matmul=True)
    ws = G.mapping(torch.randn([4, 8]), labels(4))
    G.eval()
    one = G.synthesis(ws[:1], noise_mode='const')
    assert torch.equal(one, G.synthesis(ws[:1], noise_mode='const', fused_modconv=True))
    assert not torch.equal(one, G.synthesis(ws[:1], noise_mode='const', fused_modconv=False))
    batch = G.synthesis(ws, noise_mode='const')
    assert torch.equal(batch, G.synthesis(ws, noise_mode='const', fused_modconv=False))
    per_image = torch.cat([G.synthesis(ws[i:i + 1], noise_mode='const') for i in range(4)])
    assert_close_rel(batch, per_image, 1e-5)
    G.train()
    assert torch.equal(G.synthesis(ws, noise_mode='const'), G.synthesis(ws, noise_mode='const', fused_modconv=False))
    assert torch.equal(G.synthesis(ws[:1], noise_mode='const'), G.synthesis(ws[:1], noise_mode='const', fused_modconv=False))

#----------------------------------------------------------------------------

@pytest.mark.parametrize('cls', [net.Generator, net.Discriminator])
def test_bf16_blocks(cls):
    # num_fp16_res 2 at 16 px: the 16 and 8 px blocks in bfloat16, G's 4 px block, images and logits in float32.
    ref, fast = make_pair(cls, shared=dict(num_fp16_res=2, conv_clamp=256), cpu_bf16=True)
    seen = block_inputs(fast)
    seen_ref = block_inputs(ref)
    if cls is net.Generator:
        z, c = torch.randn([4, 8]), labels(4)
        out_ref, out_fast = ref(z, c, noise_mode='const'), fast(z, c, noise_mode='const')
    else:
        img, c, t = torch.randn([4, 3, 16, 16]), labels(4), torch.tensor([0, 3, 10, 50])
        out_ref, out_fast = ref(img, c, t), fast(img, c, t)
    expected = {16: torch.bfloat16, 8: torch.bfloat16, **({4: torch.float32} if cls is net.Generator else {})} # D ends in its epilogue at 4 px
    assert {res: x.dtype for res, x in seen} == expected
    assert all(x.dtype == torch.float32 for _res, x in seen_ref)
    assert out_fast.dtype == torch.float32
    assert_close_rel(out_fast, out_ref, 3e-2)
    assert not torch.equal(out_fast, out_ref)
    grads = torch.autograd.grad(out_fast.square().sum(), [p for p in fast.parameters() if p.requires_grad], allow_unused=True)
    assert all(g is None or (g.dtype == torch.float32 and torch.isfinite(g).all()) for g in grads)
    assert sum(g is not None and g.abs().sum() > 0 for g in grads) >= len(grads) - 2

#----------------------------------------------------------------------------

def test_single_images_bit_identical_to_reference():
    # The official tools generate one image at a time, fused, contiguous, float32: the fast path's networks must give
    # those exact numbers at batch 1 (generate.py --batch 1), whatever their CPU settings.
    G_ref, G_fast = make_pair(net.Generator, cpu_channels_last=True, fused_modconv_default='auto', demod_matmul=True)
    G_ref.eval()
    G_fast.eval()
    z, c = torch.randn([3, 8]), labels(3)
    for i in range(3):
        with torch.no_grad():
            assert torch.equal(G_fast(z[i:i + 1], c[i:i + 1], noise_mode='const'), G_ref(z[i:i + 1], c[i:i + 1], noise_mode='const'))

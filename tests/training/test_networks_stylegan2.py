"""Tests of training/networks_stylegan2.py: shapes and dtypes, parameter counts against a closed form and the
published StyleGAN2 config-F sizes, the timestep-aware D, determinism, truncation, noise modes,
modulated_conv2d against a per-sample reference, minibatch stddev against numpy, pickle round trip."""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from torch_utils.ops import upfirdn2d
from training import networks_stylegan2 as net

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#----------------------------------------------------------------------------
# Tiny networks: channels_dict = {4: 32, 8: 32, 16: 32, 32: 16} for channel_base 512, channel_max 32.

def make_G(res=16, img_channels=3, c_dim=0, architecture='skip', **kwargs):
    return net.Generator(z_dim=16, c_dim=c_dim, w_dim=16, img_resolution=res, img_channels=img_channels,
        mapping_kwargs=dict(num_layers=2), channel_base=512, channel_max=32, architecture=architecture, **kwargs)

def make_D(res=16, img_channels=3, c_dim=0, architecture='resnet', **kwargs):
    return net.Discriminator(c_dim=c_dim, img_resolution=res, img_channels=img_channels, architecture=architecture,
        channel_base=512, channel_max=32, epilogue_kwargs=dict(mbstd_group_size=2), **kwargs)

def one_hot(n, c_dim):
    return F.one_hot(torch.arange(n) % c_dim, c_dim).float() if c_dim > 0 else torch.zeros([n, 0])

def set_noise_strength(G, value):
    for name, p in G.named_parameters():
        if name.endswith('noise_strength'):
            p.data.fill_(value)

#----------------------------------------------------------------------------

# Every architecture at both resolutions; channels and labels alternate (a full product is 4x slower).
@pytest.mark.parametrize('res,architecture,img_channels,c_dim', [
    (16, 'orig', 1, 0), (16, 'skip', 3, 3), (16, 'resnet', 1, 3),
    (32, 'orig', 3, 3), (32, 'skip', 1, 0), (32, 'resnet', 3, 0),
])
def test_shapes_and_dtypes(res, architecture, img_channels, c_dim):
    torch.manual_seed(0)
    G = make_G(res, img_channels, c_dim, architecture)
    D = make_D(res, img_channels, c_dim, architecture)
    assert G.num_ws == 2 * int(np.log2(res)) - 2
    assert D.c_dim == c_dim and G.c_dim == c_dim
    n = 4
    z = torch.randn([n, G.z_dim])
    c = one_hot(n, c_dim)
    ws = G.mapping(z, c)
    assert ws.shape == (n, G.num_ws, G.w_dim) and ws.dtype == torch.float32
    img = G(z, c)
    assert img.shape == (n, img_channels, res, res) and img.dtype == torch.float32
    assert torch.isfinite(img).all()
    t = torch.randint(0, 1000, [n, 1])
    logits = D(img, c, t)
    assert logits.shape == (n, 1) and logits.dtype == torch.float32
    assert torch.isfinite(logits).all()

def test_input_shape_checks():
    D = make_D(16, 3, c_dim=2)
    img = torch.randn([4, 3, 16, 16])
    with pytest.raises(AssertionError):
        D(img, torch.zeros([4, 3]), torch.zeros([4, 1])) # label with the wrong width
    with pytest.raises(AssertionError):
        D(img, torch.zeros([4, 2]), torch.zeros([3, 1])) # one t per image
    with pytest.raises(AssertionError):
        D(torch.randn([4, 3, 8, 8]), torch.zeros([4, 2]), torch.zeros([4, 1]))

def test_mapping_without_z():
    mapping = net.MappingNetwork(z_dim=0, c_dim=3, w_dim=8, num_ws=None, w_avg_beta=None, num_layers=2)
    assert not hasattr(mapping, 'w_avg')
    w = mapping(None, one_hot(5, 3))
    assert w.shape == (5, 8)
    with pytest.raises(AssertionError):
        mapping(None, one_hot(5, 3), truncation_psi=0.5) # no running average to truncate towards

#----------------------------------------------------------------------------
# Parameter counts: an independent closed form of the architecture, and the published config-F sizes.

def expected_G_params(z_dim, c_dim, w_dim, res, img_channels, channel_base, channel_max, num_layers, architecture):
    ch = lambda r: min(channel_base // r, channel_max)
    feats = [z_dim + (w_dim if c_dim > 0 else 0)] + [w_dim] * num_layers
    total = sum(a * b + b for a, b in zip(feats[:-1], feats[1:])) + (c_dim * w_dim + w_dim if c_dim > 0 else 0)
    layer = lambda i, o: (w_dim * i + i) + o * i * 9 + o + 1 # affine, weight, bias, noise_strength
    torgb = lambda i: (w_dim * i + i) + img_channels * i + img_channels
    for log2 in range(2, int(np.log2(res)) + 1):
        r = 2 ** log2
        if r == 4:
            total += ch(4) * 16 + layer(ch(4), ch(4))
        else:
            total += layer(ch(r // 2), ch(r)) + layer(ch(r), ch(r))
            total += ch(r // 2) * ch(r) if architecture == 'resnet' else 0
        total += torgb(ch(r)) if (architecture == 'skip' or r == res) else 0
    return total

def expected_D_params(c_dim, res, img_channels, channel_base, channel_max, cmap_dim, num_layers, architecture):
    ch = lambda r: min(channel_base // r, channel_max)
    cmap_dim = ch(4) if cmap_dim is None else cmap_dim
    total = 0
    for log2 in range(int(np.log2(res)), 2, -1):
        r = 2 ** log2
        tmp, out = ch(r), ch(r // 2)
        total += img_channels * tmp + tmp if (r == res or architecture == 'skip') else 0
        total += tmp * tmp * 9 + tmp + tmp * out * 9 + out
        total += tmp * out if architecture == 'resnet' else 0
    c4 = ch(4)
    total += img_channels * c4 + c4 if architecture == 'skip' else 0
    total += (c4 + 1) * c4 * 9 + c4 + c4 * 16 * c4 + c4 + c4 * cmap_dim + cmap_dim # conv (with mbstd), fc, out
    total += (c_dim + 1) * cmap_dim + cmap_dim + num_layers * (cmap_dim * cmap_dim + cmap_dim) # mapping of [c, t]
    return total

def num_params(module, prefix=''):
    return sum(p.numel() for name, p in module.named_parameters() if name.startswith(prefix))

@pytest.mark.parametrize('res,channel_base,c_dim,num_layers,g_arch,d_arch', [
    (32, 32768, 10, 2, 'skip', 'orig'),         # cifar
    (64, 16384, 0, 8, 'skip', 'resnet'),
    (128, 16384, 0, 8, 'resnet', 'skip'),
    (256, 16384, 0, 8, 'skip', 'resnet'),       # paper256
    (512, 32768, 0, 8, 'orig', 'resnet'),       # paper512 (G orig for coverage)
    (1024, 32768, 0, 8, 'skip', 'resnet'),      # paper1024 / config F
])
def test_preset_parameter_counts(res, channel_base, c_dim, num_layers, g_arch, d_arch):
    G = net.Generator(z_dim=512, c_dim=c_dim, w_dim=512, img_resolution=res, img_channels=3,
        mapping_kwargs=dict(num_layers=num_layers), channel_base=channel_base, channel_max=512,
        num_fp16_res=4, conv_clamp=256, architecture=g_arch)
    D = net.Discriminator(c_dim=c_dim, img_resolution=res, img_channels=3, architecture=d_arch,
        channel_base=channel_base, channel_max=512, num_fp16_res=4, conv_clamp=256)
    assert num_params(G) == expected_G_params(512, c_dim, 512, res, 3, channel_base, 512, num_layers, g_arch)
    assert num_params(D) == expected_D_params(c_dim, res, 3, channel_base, 512, None, 8, d_arch)
    assert G.num_ws == 2 * int(np.log2(res)) - 2

    if res == 1024:
        # Published config-F sizes for 1024x1024x3 (about 30.3M G, 29.0M D), within 1%. Our D adds the mapping
        # network of t, and its output layer has cmap_dim = 512 outputs instead of one logit (512 + 1 parameters).
        d_official = num_params(D) - num_params(D, 'mapping.') - num_params(D, 'b4.out.') + (512 + 1)
        assert abs(num_params(G) / 30276583 - 1) < 0.01
        assert abs(d_official / 29011969 - 1) < 0.01

#----------------------------------------------------------------------------
# Timestep awareness.

def test_discriminator_depends_on_t():
    torch.manual_seed(1)
    D = make_D(16, 3, c_dim=0)
    # A trained D has a non-zero embedding bias; at init (bias 0) the normalized embedding of a single
    # positive t column is the same for every t > 0.
    D.mapping.embed.bias.data.normal_()
    img = torch.randn([4, 3, 16, 16])
    c = torch.zeros([4, 0])
    t_a = torch.tensor([[0], [10], [100], [500]])
    t_b = torch.tensor([[5], [20], [300], [999]])
    logits_a = D(img, c, t_a)
    logits_b = D(img, c, t_b)
    assert (logits_a - logits_b).abs().min() > 1e-6
    # int64 [N, 1], float [N, 1] and float [N] are the same input.
    assert torch.equal(logits_a, D(img, c, t_a.float()))
    assert torch.equal(logits_a, D(img, c, t_a.flatten().float()))

    # Gradients reach t and every parameter of the mapping of [c, t]. (No finite-difference check here: the
    # mapping runs in float32 and its lrelu kinks are dense in t; gradients of the layers are checked below.)
    t = torch.tensor([3.0, 40.0, 200.0, 700.0], requires_grad=True)
    D(img, c, t).sum().backward()
    assert (t.grad.abs() > 0).all()
    for name, p in D.mapping.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name

def test_discriminator_conditional_t_at_init():
    torch.manual_seed(2)
    D = make_D(16, 1, c_dim=3)
    img = torch.randn([4, 1, 16, 16])
    c = one_hot(4, 3)
    logits_a = D(img, c, torch.full([4, 1], 10))
    logits_b = D(img, c, torch.full([4, 1], 50))
    assert (logits_a - logits_b).abs().min() > 1e-6

def test_gradients_reach_every_parameter():
    torch.manual_seed(3)
    G = make_G(16, 3, c_dim=2, architecture='resnet')
    D = make_D(16, 3, c_dim=2, architecture='skip')
    set_noise_strength(G, 0.1)
    z = torch.randn([4, G.z_dim])
    c = one_hot(4, 2)
    D(G(z, c), c, torch.randint(0, 1000, [4])).sum().backward()
    for name, p in list(G.named_parameters()) + list(D.named_parameters()):
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name

def test_freeze_layers():
    D = make_D(16, 3, block_kwargs=dict(freeze_layers=2))
    frozen = {name for name, _ in D.named_buffers() if name.endswith(('weight', 'bias'))}
    assert frozen == {'b16.fromrgb.weight', 'b16.fromrgb.bias', 'b16.conv0.weight', 'b16.conv0.bias'}
    assert num_params(D) == num_params(make_D(16, 3)) - sum(D.get_buffer(name).numel() for name in frozen)

#----------------------------------------------------------------------------
# Determinism, truncation, noise modes, mixed precision.

def test_determinism_under_seed():
    def run(seed):
        torch.manual_seed(seed)
        G = make_G(16, 3, c_dim=0)
        set_noise_strength(G, 0.3)
        return G(torch.randn([2, G.z_dim]), None, noise_mode='random')
    img_a, img_b, img_c = run(0), run(0), run(1)
    assert torch.equal(img_a, img_b)
    assert not torch.allclose(img_a, img_c)

def test_w_avg_update_and_truncation():
    torch.manual_seed(4)
    G = make_G(16, 3, c_dim=2)
    c = one_hot(6, 2)
    beta = G.mapping.w_avg_beta
    for _ in range(3):
        z = torch.randn([6, G.z_dim])
        w = G.mapping(z, c)[:, 0]
        w_avg_prev = G.mapping.w_avg.clone()
        G.mapping(z, c, update_emas=True)
        assert torch.allclose(G.mapping.w_avg, beta * w_avg_prev + (1 - beta) * w.mean(0), atol=1e-6)
    w_avg = G.mapping.w_avg
    assert w_avg.abs().sum() > 0

    z = torch.randn([6, G.z_dim])
    ws = G.mapping(z, c)
    assert torch.equal(G.mapping(z, c, truncation_psi=1), ws)
    ws_0 = G.mapping(z, c, truncation_psi=0)
    assert torch.allclose(ws_0, w_avg.expand_as(ws_0))
    ws_cut = G.mapping(z, c, truncation_psi=0.5, truncation_cutoff=2)
    assert torch.allclose(ws_cut[:, :2], 0.5 * (ws[:, :2] + w_avg), atol=1e-6)
    assert torch.equal(ws_cut[:, 2:], ws[:, 2:])

    img = G(z, c, truncation_psi=0, noise_mode='const')
    ref = G.synthesis(w_avg.reshape(1, 1, -1).repeat(6, G.num_ws, 1), noise_mode='const')
    assert torch.allclose(img, ref, atol=1e-6)

def test_noise_modes():
    torch.manual_seed(5)
    G = make_G(16, 3)
    set_noise_strength(G, 0.5)
    z = torch.randn([2, G.z_dim])
    torch.manual_seed(10)
    const_a = G(z, None, noise_mode='const')
    torch.manual_seed(11)
    const_b = G(z, None, noise_mode='const')
    assert torch.equal(const_a, const_b)
    assert not torch.allclose(G(z, None, noise_mode='random'), G(z, None, noise_mode='random'))
    assert not torch.allclose(const_a, G(z, None, noise_mode='none'))
    set_noise_strength(G, 0)
    assert torch.allclose(G(z, None, noise_mode='none'), G(z, None, noise_mode='random'), atol=1e-6)

def test_fused_modconv_in_networks():
    torch.manual_seed(6)
    G = make_G(16, 3, architecture='resnet')
    ws = G.mapping(torch.randn([3, G.z_dim]), None)
    fused = G.synthesis(ws, noise_mode='const', fused_modconv=True)
    unfused = G.synthesis(ws, noise_mode='const', fused_modconv=False)
    assert torch.allclose(fused, unfused, atol=1e-4, rtol=1e-4)

def test_fp16_blocks_run_fp32_on_cpu():
    torch.manual_seed(7)
    G32, D32 = make_G(16, 3), make_D(16, 3)
    G16, D16 = make_G(16, 3, num_fp16_res=2, conv_clamp=256), make_D(16, 3, num_fp16_res=2, conv_clamp=256)
    assert G16.synthesis.b16.use_fp16 and G16.synthesis.b8.use_fp16 and not G16.synthesis.b4.use_fp16
    assert D16.b16.use_fp16 and D16.b8.use_fp16
    G16.load_state_dict(G32.state_dict())
    D16.load_state_dict(D32.state_dict())
    z = torch.randn([2, G32.z_dim])
    img32 = G32(z, None, noise_mode='const')
    img16 = G16(z, None, noise_mode='const')
    assert img16.dtype == torch.float32
    assert torch.equal(img16, img32) # values stay far below the clamp at init
    t = torch.tensor([1, 2])
    assert torch.equal(D16(img32, torch.zeros([2, 0]), t), D32(img32, torch.zeros([2, 0]), t))

#----------------------------------------------------------------------------
# Layers against hand-written formulas.

def test_fully_connected_layer_equalized_lr():
    torch.manual_seed(8)
    layer = net.FullyConnectedLayer(6, 5, activation='lrelu', lr_multiplier=0.01, bias_init=0.3)
    assert torch.allclose(layer.bias * 0.01, torch.full([5], 0.003))
    layer.bias.data.normal_()
    x = torch.randn([4, 6])
    y = x @ (layer.weight * 0.01 / np.sqrt(6)).t() + layer.bias * 0.01
    ref = F.leaky_relu(y, 0.2) * np.sqrt(2)
    assert torch.allclose(layer(x), ref, atol=1e-6)
    linear = net.FullyConnectedLayer(6, 5)
    assert torch.allclose(linear(x), x @ (linear.weight / np.sqrt(6)).t(), atol=1e-6)

def test_conv2d_layer_equalized_lr():
    torch.manual_seed(9)
    layer = net.Conv2dLayer(4, 5, kernel_size=3, activation='lrelu', conv_clamp=0.5)
    layer.bias.data.normal_()
    x = torch.randn([2, 4, 7, 7])
    ref = F.conv2d(x, layer.weight / np.sqrt(4 * 9), layer.bias, padding=1)
    ref = (F.leaky_relu(ref, 0.2) * np.sqrt(2)).clamp(-0.5, 0.5)
    assert torch.allclose(layer(x), ref, atol=1e-6)
    frozen = net.Conv2dLayer(4, 5, kernel_size=1, trainable=False)
    assert len(list(frozen.parameters())) == 0 and frozen.weight.shape == (5, 4, 1, 1)

#----------------------------------------------------------------------------
# modulated_conv2d: fused, non-fused and an explicit per-sample loop with hand-modulated weights.

def modconv_reference(x, weight, styles, noise, demodulate, up=1, down=1, f=None):
    outs = []
    for n in range(x.shape[0]):
        w = weight * styles[n].reshape(1, -1, 1, 1)
        if demodulate:
            w = w / (w.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).sqrt()
        xn = x[n:n + 1]
        if up > 1: # zero insertion + interpolation filter (gain up^2), then a valid correlation
            out = F.conv2d(upfirdn2d.upfirdn2d(xn, f, up=up, padding=[3, 2, 3, 2], gain=up ** 2), w)
        elif down > 1: # anti-alias filter, then a valid correlation with stride
            out = F.conv2d(upfirdn2d.upfirdn2d(xn, f, padding=[2, 2, 2, 2]), w, stride=down)
        else:
            out = F.conv2d(xn, w, padding=1)
        outs.append(out)
    out = torch.cat(outs)
    return out + noise if noise is not None else out

@pytest.mark.parametrize('demodulate', [True, False])
@pytest.mark.parametrize('with_noise', [True, False])
def test_modulated_conv2d_against_loop(demodulate, with_noise):
    gen = torch.Generator().manual_seed(10)
    x = torch.randn([3, 4, 6, 6], generator=gen, dtype=torch.float64)
    weight = torch.randn([5, 4, 3, 3], generator=gen, dtype=torch.float64)
    styles = torch.randn([3, 4], generator=gen, dtype=torch.float64)
    noise = torch.randn([3, 1, 6, 6], generator=gen, dtype=torch.float64) if with_noise else None
    ref = modconv_reference(x, weight, styles, noise, demodulate)
    for fused, demod_matmul in [(True, False), (False, False), (False, True)]:
        out = net.modulated_conv2d(x.clone(), weight, styles, noise=noise, padding=1, demodulate=demodulate, fused_modconv=fused, demod_matmul=demod_matmul)
        assert out.dtype == torch.float64
        assert torch.allclose(out, ref, rtol=1e-10, atol=1e-10), f'fused_modconv={fused}, demod_matmul={demod_matmul}'

@pytest.mark.parametrize('up,down', [(2, 1), (1, 2)])
def test_modulated_conv2d_resampling(up, down):
    gen = torch.Generator().manual_seed(11)
    x = torch.randn([2, 3, 8, 8], generator=gen, dtype=torch.float64)
    weight = torch.randn([4, 3, 3, 3], generator=gen, dtype=torch.float64)
    styles = torch.randn([2, 3], generator=gen, dtype=torch.float64)
    f = upfirdn2d.setup_filter([1, 3, 3, 1]) # filters stay float32, upfirdn2d casts them
    # SynthesisLayer upsamples with flip_weight=False: a true convolution, i.e. correlation with the flipped kernel.
    flip_weight = (up == 1)
    ref = modconv_reference(x, weight if flip_weight else weight.flip([2, 3]), styles, None, True, up=up, down=down, f=f)
    for fused in [True, False]:
        out = net.modulated_conv2d(x, weight, styles, up=up, down=down, padding=1, resample_filter=f,
            flip_weight=flip_weight, fused_modconv=fused)
        assert out.shape == ref.shape
        assert torch.allclose(out, ref, rtol=1e-10, atol=1e-10), f'fused_modconv={fused}'

def test_modulated_conv2d_gradcheck():
    gen = torch.Generator().manual_seed(12)
    x = torch.randn([2, 2, 3, 3], generator=gen, dtype=torch.float64, requires_grad=True)
    weight = torch.randn([2, 2, 3, 3], generator=gen, dtype=torch.float64, requires_grad=True)
    styles = torch.randn([2, 2], generator=gen, dtype=torch.float64, requires_grad=True)
    for fused in [True, False]:
        fn = lambda x, w, s: net.modulated_conv2d(x, w, s, padding=1, fused_modconv=fused)
        assert torch.autograd.gradcheck(fn, (x, weight, styles), fast_mode=True)

def test_modulated_conv2d_fp16_prenormalization():
    # Weights and styles large enough that float16 overflows without the pre-normalization.
    gen = torch.Generator().manual_seed(13)
    x = torch.randn([2, 8, 5, 5], generator=gen, dtype=torch.float64)
    weight = torch.randn([4, 8, 3, 3], generator=gen, dtype=torch.float64) * 300
    styles = torch.randn([2, 8], generator=gen, dtype=torch.float64) * 300
    ref = modconv_reference(x, weight, styles, None, True)
    try:
        out = net.modulated_conv2d(x.half(), weight.float(), styles.float(), padding=1, fused_modconv=True)
    except RuntimeError as e:
        pytest.skip(f'float16 convolution not supported by this PyTorch build on CPU: {e}')
    assert out.dtype == torch.float16 and torch.isfinite(out).all()
    assert torch.allclose(out.double(), ref, rtol=1e-2, atol=1e-2)

#----------------------------------------------------------------------------

def mbstd_reference(x, group_size, num_channels):
    N, C, H, W = x.shape
    G = N if group_size is None else min(group_size, N)
    n_groups = N // G
    c = C // num_channels
    extra = np.zeros([N, num_channels, H, W])
    for i in range(N):
        members = [j for j in range(N) if j % n_groups == i % n_groups]
        for f in range(num_channels):
            part = x[members, f * c:(f + 1) * c]
            std = np.sqrt(((part - part.mean(axis=0)) ** 2).mean(axis=0) + 1e-8)
            extra[i, f] = std.mean()
    return np.concatenate([x, extra], axis=1)

@pytest.mark.parametrize('group_size,num_channels', [(4, 1), (2, 2), (16, 1), (None, 3)])
def test_minibatch_std(group_size, num_channels):
    x = np.random.default_rng(14).standard_normal([8, 6, 3, 3])
    out = net.MinibatchStdLayer(group_size, num_channels)(torch.from_numpy(x))
    np.testing.assert_allclose(out.numpy(), mbstd_reference(x, group_size, num_channels), rtol=1e-10, atol=1e-12)

#----------------------------------------------------------------------------

_ROUND_TRIP_SCRIPT = '''
import pickle, sys, torch
with open(sys.argv[1], 'rb') as f:
    data = pickle.load(f)
G, D = data['G_ema'], data['D']
assert type(G).__module__ != 'training.networks_stylegan2', 'expected a class rebuilt from the pickled source'
z = torch.from_numpy(data['z'])
img = G(z, None, noise_mode='const')
logits = D(img, torch.zeros([z.shape[0], 0]), torch.tensor([0, 7]))
torch.save(dict(img=img, logits=logits), sys.argv[2])
'''

def test_pickle_round_trip_in_fresh_process(tmp_path):
    torch.manual_seed(15)
    G = make_G(16, 3).eval().requires_grad_(False)
    D = make_D(16, 3).eval().requires_grad_(False)
    set_noise_strength(G, 0.2)
    z = np.random.default_rng(15).standard_normal([2, G.z_dim]).astype(np.float32)
    img = G(torch.from_numpy(z), None, noise_mode='const')
    logits = D(img, torch.zeros([2, 0]), torch.tensor([0, 7]))

    pkl, out = tmp_path / 'snapshot.pkl', tmp_path / 'out.pt'
    with open(pkl, 'wb') as f:
        pickle.dump(dict(G_ema=G, D=D, z=z), f)
    env = dict(os.environ, PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    subprocess.run([sys.executable, '-c', _ROUND_TRIP_SCRIPT, str(pkl), str(out)], cwd=REPO_ROOT, env=env, check=True, timeout=120)
    result = torch.load(out)
    assert torch.equal(result['img'], img)
    assert torch.equal(result['logits'], logits)

#----------------------------------------------------------------------------

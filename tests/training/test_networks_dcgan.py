"""DCGAN (training/networks_dcgan.py): the original's layer widths and shapes at 32 and 64 px, the timestep
projection of the Diffusion-DCGAN discriminator against a hand computation, the sinusoidal embedding's closed form."""

import pickle

import numpy as np
import pytest
import torch

from tests.test_train import load_in_fresh_process
from training import networks_dcgan

#----------------------------------------------------------------------------

def conv_widths(module):
    return [(m.in_channels, m.out_channels) for m in module.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]

def test_original_widths_at_64px():
    # Radford et al.'s 64 px DCGAN: G 100 -> 512 (4x4) -> 256 -> 128 -> 64 -> 3, D 3 -> 64 -> 128 -> 256 -> 512 -> 1.
    G = networks_dcgan.Generator(z_dim=100, c_dim=0, img_resolution=64, img_channels=3, ngf=64)
    D = networks_dcgan.Discriminator(c_dim=0, img_resolution=64, img_channels=3, ndf=64, t_aware=False)
    assert conv_widths(G) == [(100, 512), (512, 256), (256, 128), (128, 64), (64, 3)]
    assert conv_widths(D) == [(3, 64), (64, 128), (128, 256), (256, 512), (512, 1)]
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in G.modules()) == 4
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in D.modules()) == 3 # none after D's first convolution

@pytest.mark.parametrize('res,channels,c_dim', [(32, 1, 0), (64, 3, 0), (32, 3, 10)])
def test_shapes(res, channels, c_dim):
    torch.manual_seed(0)
    G = networks_dcgan.Generator(z_dim=16, c_dim=c_dim, img_resolution=res, img_channels=channels, ngf=8)
    D = networks_dcgan.Discriminator(c_dim=c_dim, img_resolution=res, img_channels=channels, ndf=8)
    z = torch.randn([5, 16])
    c = torch.nn.functional.one_hot(torch.arange(5) % max(c_dim, 1), max(c_dim, 1)).float()[:, :c_dim]
    img = G(z, c)
    assert img.shape == (5, channels, res, res) and img.dtype == torch.float32
    assert img.abs().max() <= 1 # tanh
    logits = D(img, c, torch.arange(5)[:, None])
    assert logits.shape == (5, 1) and torch.isfinite(logits).all()

def test_bad_resolution():
    for res in [8, 48, 512]:
        with pytest.raises(ValueError, match=f'not {res}'):
            networks_dcgan.Generator(z_dim=4, c_dim=0, img_resolution=res, img_channels=1)
        with pytest.raises(ValueError, match=f'not {res}'):
            networks_dcgan.Discriminator(c_dim=0, img_resolution=res, img_channels=1)

def test_timestep_projection_by_hand():
    # logit = out(h) + <e_t(t) + e_c(c), sum over 4x4 of h> / sqrt(channels); t_aware=False: t changes nothing.
    torch.manual_seed(1)
    D = networks_dcgan.Discriminator(c_dim=3, img_resolution=16, img_channels=1, ndf=4).eval()
    img = torch.randn([4, 1, 16, 16])
    c = torch.eye(3)[[0, 1, 2, 0]]
    t = torch.tensor([[0], [3], [50], [7]])
    h = D.main(img)
    emb = D.t_embed.fc1(torch.nn.functional.silu(D.t_embed.fc0(networks_dcgan.TimestepEmbedding.sinusoidal(t, 128)))) + c @ D.c_embed.weight.T * D.c_lr_multiplier
    expected = (h * D.out.weight[0]).sum([1, 2, 3])[:, None] + (h.sum([2, 3]) * emb).sum(1, keepdim=True) / np.sqrt(h.shape[1])
    assert torch.allclose(D(img, c, t), expected, atol=1e-5)
    assert not torch.allclose(D(img, c, t), D(img, c, t + 1))
    plain = networks_dcgan.Discriminator(c_dim=0, img_resolution=16, img_channels=1, ndf=4, t_aware=False).eval()
    assert torch.equal(plain(img, c[:, :0], t), plain(img, c[:, :0], t + 100))
    assert torch.allclose(plain(img, c[:, :0], t), (plain.main(img) * plain.out.weight[0]).sum([1, 2, 3])[:, None], atol=1e-6)

def test_class_conditional_batch_norm_by_hand():
    # With labels each batch norm of G is normalize(x) * (1 + W_g c + b_g) + W_b c + b_b (batch statistics in training
    # mode); DifGAN's step network (cond_norm=False) keeps plain batch norms.
    torch.manual_seed(2)
    G = networks_dcgan.Generator(z_dim=8, c_dim=3, img_resolution=16, img_channels=1, ngf=4)
    for norm in G.norms[0]:
        for linear in (norm.gain, norm.bias):
            torch.nn.init.normal_(linear.weight, 0, 0.5)
            torch.nn.init.normal_(linear.bias, 0, 0.5)
    z, c = torch.randn([6, 8]), torch.eye(3)[[0, 1, 2, 2, 1, 0]]
    scaled = c * G.c_lr_multiplier # the label's learning-rate multiplier
    x = G.convs[0](torch.cat([z, scaled], dim=1)[:, :, None, None])
    for norm, conv in zip(G.norms[0], G.convs[1:]):
        normalized = (x - x.mean([0, 2, 3], keepdim=True)) / (x.var([0, 2, 3], unbiased=False, keepdim=True) + 1e-5).sqrt()
        gain = 1 + scaled @ norm.gain.weight.T + norm.gain.bias
        bias = scaled @ norm.bias.weight.T + norm.bias.bias
        x = conv(torch.relu(normalized * gain[:, :, None, None] + bias[:, :, None, None]))
    assert torch.allclose(G(z, c), torch.tanh(x), atol=1e-5)
    plain = networks_dcgan.Generator(z_dim=8, c_dim=3, img_resolution=16, img_channels=1, ngf=4, cond_norm=False)
    assert all(isinstance(norm, torch.nn.BatchNorm2d) for norm in plain.norms[0])

def test_label_lr_multiplier_starts_the_same():
    # c_lr_multiplier rescales the label's weights and inputs, not the function: from the same seed, G and D with a
    # multiplier of 16 compute what they compute with 1 (to float rounding), and their label weights are 16x smaller.
    z, c, t = torch.randn([6, 8]), torch.eye(3)[[0, 1, 2, 2, 1, 0]], torch.arange(6)
    nets = {}
    for multiplier in [1, 16]:
        torch.manual_seed(3)
        G = networks_dcgan.Generator(z_dim=8, c_dim=3, img_resolution=16, img_channels=1, ngf=4, c_lr_multiplier=multiplier)
        D = networks_dcgan.Discriminator(c_dim=3, img_resolution=16, img_channels=1, ndf=4, c_lr_multiplier=multiplier)
        img = G(z, c)
        nets[multiplier] = (G, D, img, D(img, c, t))
    (G1, D1, img1, logits1), (G16, D16, img16, logits16) = nets[1], nets[16]
    assert torch.allclose(img1, img16, atol=1e-5) and torch.allclose(logits1, logits16, atol=1e-5)
    assert torch.allclose(G1.convs[0].weight[8:], G16.convs[0].weight[8:] * 16)
    assert torch.allclose(G1.norms[0][0].gain.weight, G16.norms[0][0].gain.weight * 16)
    assert torch.allclose(D1.c_embed.weight, D16.c_embed.weight * 16)

@pytest.mark.slow('a fresh Python process imports torch and loads a pickle')
def test_conditional_generator_pickle_loads_without_training_package(tmp_path):
    # The class-conditional batch norms come from networks_fastgan; a pickle of the conditional G still rebuilds
    # where only dnnlib and torch_utils are importable, and renders the same images.
    torch.manual_seed(4)
    G = networks_dcgan.Generator(z_dim=8, c_dim=10, img_resolution=16, img_channels=1, ngf=4).eval()
    snapshot = tmp_path / 'G.pkl'
    with open(snapshot, 'wb') as f:
        pickle.dump(dict(G_ema=G, diffusion_state=None), f)
    result = load_in_fresh_process(str(snapshot), tmp_path / 'fresh')
    z = torch.from_numpy(np.random.RandomState(7).randn(4, G.z_dim)).float()
    assert torch.equal(result['img'], G(z, torch.eye(10)[:4]))

def test_sinusoidal_embedding_closed_form():
    # dim 6: frequencies 10000^(-i/2), i = 0, 1, 2 -> 1, 0.01, 0.0001; sines first, then cosines.
    t = torch.tensor([0, 1, 250])
    emb = networks_dcgan.TimestepEmbedding.sinusoidal(t, 6)
    freqs = np.array([1, 1e-2, 1e-4])
    expected = np.concatenate([np.sin(t.numpy()[:, None] * freqs), np.cos(t.numpy()[:, None] * freqs)], axis=1)
    assert np.allclose(emb.numpy(), expected, atol=1e-6)

#----------------------------------------------------------------------------

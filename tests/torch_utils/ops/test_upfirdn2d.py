"""upfirdn2d: setup_filter against hand-built filters, upfirdn2d against explicit NumPy zero insertion +
scipy.signal convolution + striding, the size-keeping wrappers against known special cases (nearest-neighbor
upsampling, average pooling, 'same' convolution), gradients by finite differences (impl='cuda': test_cuda_ops.py)."""

import numpy as np
import pytest
import scipy.signal
import torch

from torch_utils.ops import upfirdn2d

#----------------------------------------------------------------------------

def _np_upfirdn2d(x: np.ndarray, f2d: np.ndarray, upx: int, upy: int, downx: int, downy: int, pad: list, flip_filter: bool, gain: float) -> np.ndarray:
    """Independent reference on [N, C, H, W] with a 2D filter, one image plane at a time."""
    n, c, h, w = x.shape
    z = np.zeros([n, c, h * upy, w * upx])
    z[:, :, ::upy, ::upx] = x
    px0, px1, py0, py1 = pad
    z = np.pad(z, [(0, 0), (0, 0), (max(py0, 0), max(py1, 0)), (max(px0, 0), max(px1, 0))])
    z = z[:, :, max(-py0, 0) : z.shape[2] - max(-py1, 0), max(-px0, 0) : z.shape[3] - max(-px1, 0)]
    op = scipy.signal.correlate2d if flip_filter else scipy.signal.convolve2d
    out = np.stack([np.stack([op(z[i, j], f2d * gain, mode='valid') for j in range(c)]) for i in range(n)])
    return out[:, :, ::downy, ::downx]

def _rand(shape, seed):
    return np.random.default_rng(seed).normal(size=shape)

#----------------------------------------------------------------------------

def test_setup_filter_normalize_outer_product_and_gain():
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    expected = np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64
    assert f.dtype == torch.float32 and f.shape == (4, 4)
    np.testing.assert_allclose(f.numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(upfirdn2d.setup_filter([1, 3, 3, 1], gain=4).numpy(), expected * 4, rtol=1e-6)
    np.testing.assert_allclose(upfirdn2d.setup_filter([1, 2], normalize=False).numpy(), [[1, 2], [2, 4]])
    assert torch.equal(upfirdn2d.setup_filter(None), torch.ones([1, 1]))

def test_setup_filter_separable_rule():
    taps = np.arange(1, 9, dtype=np.float64)
    f = upfirdn2d.setup_filter(taps, gain=4) # >= 8 taps: kept 1D, sqrt(gain) per axis.
    assert f.shape == (8,)
    np.testing.assert_allclose(f.numpy(), taps / taps.sum() * 2, rtol=1e-6)
    assert upfirdn2d.setup_filter(taps, separable=False).shape == (8, 8)
    assert upfirdn2d.setup_filter([1, 3, 3, 1], separable=True).shape == (4,)
    f2 = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float64)
    np.testing.assert_allclose(upfirdn2d.setup_filter(f2).numpy(), f2 / f2.sum(), rtol=1e-6) # 2D stays 2D.

def test_setup_filter_flip():
    f2 = np.array([[1, 2, 3], [4, 5, 7]], dtype=np.float64)
    np.testing.assert_allclose(upfirdn2d.setup_filter(f2, flip_filter=True).numpy(), f2[::-1, ::-1] / f2.sum(), rtol=1e-6)
    np.testing.assert_allclose(upfirdn2d.setup_filter([1, 2, 4], flip_filter=True, separable=True).numpy(), np.array([4, 2, 1]) / 7, rtol=1e-6)

#----------------------------------------------------------------------------

FILTERS = {
    'binomial4':    dict(taps=[1, 3, 3, 1], separable=False),
    'asym2d':       dict(taps=[[1, 2, 0.5], [-1, 3, 2]], separable=False),
    'separable3':   dict(taps=[1, 2, 4], separable=True),
    'none':         dict(taps=None, separable=False),
}

CASES = [ # (filter, up, down, padding, flip_filter, gain)
    ('binomial4',  1, 1, 0, False, 1),
    ('binomial4',  2, 1, [2, 1], False, 4),
    ('binomial4',  1, 2, [1, 1, 2, 0], False, 1),
    ('binomial4',  2, 2, [2, 1, 1, 2], False, 1),
    ('asym2d',     1, 1, [1, 2, 0, 1], False, 1),
    ('asym2d',     1, 1, [1, 2, 0, 1], True, 2.5),
    ('asym2d',     [2, 1], [1, 3], [3, 0, -1, 2], False, 1),
    ('asym2d',     3, 2, [-2, 1, 2, -1], True, 1),
    ('separable3', 2, 1, 1, False, 4),
    ('separable3', [1, 2], [2, 1], [0, 2, 1, 0], True, 0.5),
    ('none',       2, 3, [1, -1, 0, 2], False, 1),
]

@pytest.mark.parametrize('name,up,down,padding,flip_filter,gain', CASES)
def test_upfirdn2d_matches_numpy(name, up, down, padding, flip_filter, gain):
    spec = FILTERS[name]
    f = upfirdn2d.setup_filter(spec['taps'], separable=spec['separable']) if spec['taps'] is not None else None
    f2d = np.ones([1, 1]) if f is None else (np.outer(f.numpy(), f.numpy()) if f.ndim == 1 else f.numpy()).astype(np.float64)
    upx, upy = (up, up) if isinstance(up, int) else up
    downx, downy = (down, down) if isinstance(down, int) else down
    pad = [padding] * 4 if isinstance(padding, int) else padding if len(padding) == 4 else [padding[0], padding[0], padding[1], padding[1]]
    x = _rand([2, 3, 5, 6], seed=0)
    expected = _np_upfirdn2d(x, f2d, upx, upy, downx, downy, pad, flip_filter, gain)
    y = upfirdn2d.upfirdn2d(torch.tensor(x), f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-6, atol=1e-6) # f is float32.

def test_float32_input_and_dtype():
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    x = torch.randn([1, 2, 4, 4])
    y = upfirdn2d.upfirdn2d(x, f, up=2, padding=[2, 1, 2, 1])
    assert y.dtype == torch.float32 and y.shape == (1, 2, 8, 8)

#----------------------------------------------------------------------------

def test_upsample2d_box_filter_is_nearest_neighbor():
    x = torch.tensor(_rand([2, 3, 4, 5], seed=1))
    y = upfirdn2d.upsample2d(x, upfirdn2d.setup_filter([1, 1]))
    expected = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    torch.testing.assert_close(y, expected, rtol=1e-6, atol=1e-6)

def test_downsample2d_box_filter_is_average_pooling():
    x = torch.tensor(_rand([2, 3, 6, 8], seed=2))
    y = upfirdn2d.downsample2d(x, upfirdn2d.setup_filter([1, 1]))
    torch.testing.assert_close(y, torch.nn.functional.avg_pool2d(x, 2), rtol=1e-6, atol=1e-6)

@pytest.mark.parametrize('taps', [[1, 2, 1], [1, 3, 3, 1], [1, 2, 3, 5, 1]])
def test_filter2d_is_same_size_convolution(taps):
    x = _rand([1, 2, 5, 7], seed=3)
    f = upfirdn2d.setup_filter(taps)
    f2d = f.numpy().astype(np.float64)
    expected = np.stack([scipy.signal.convolve2d(x[0, c], f2d, mode='same') for c in range(2)])[np.newaxis]
    y = upfirdn2d.filter2d(torch.tensor(x), f)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-6, atol=1e-6)

@pytest.mark.parametrize('taps', [[1, 3, 3, 1], [1, 2, 1], [1, 1, 1, 1, 1, 1, 1, 1]])
def test_up_down_sizes_and_dc_gain(taps):
    f = upfirdn2d.setup_filter(taps)
    x = torch.full([1, 1, 8, 10], 3.0, dtype=torch.float64)
    up = upfirdn2d.upsample2d(x, f, up=2)
    down = upfirdn2d.downsample2d(x, f, down=2)
    assert up.shape == (1, 1, 16, 20) and down.shape == (1, 1, 4, 5)
    m = len(taps) # Away from the borders (where zero padding enters) a constant stays the same constant.
    torch.testing.assert_close(up[:, :, m:-m, m:-m], torch.full_like(up[:, :, m:-m, m:-m], 3.0))
    torch.testing.assert_close(down[:, :, 2:-2, 2:-2], torch.full_like(down[:, :, 2:-2, 2:-2], 3.0))
    assert upfirdn2d.upsample2d(x, f, up=[2, 1], padding=[1, 0]).shape == (1, 1, 8, 22)
    assert upfirdn2d.downsample2d(x, f, down=[1, 2], padding=1).shape == (1, 1, 5, 12)

#----------------------------------------------------------------------------

@pytest.mark.parametrize('taps,separable,kwargs', [
    ([1, 3, 3, 1], False, dict(up=2, down=1, padding=[2, 1])),
    ([1, 2, 4], True, dict(up=1, down=2, padding=[1, 0, 0, 1], flip_filter=True)),
    ([[1, 2], [3, 1]], False, dict(up=2, down=2, padding=[0, -1, 1, 1], gain=2)),
])
def test_gradcheck_and_gradgradcheck(taps, separable, kwargs):
    f = upfirdn2d.setup_filter(taps, separable=separable)
    x = torch.randn([1, 1, 2, 3], dtype=torch.float64, requires_grad=True)
    fn = lambda x: upfirdn2d.upfirdn2d(x, f, **kwargs)
    assert torch.autograd.gradcheck(fn, [x])
    assert torch.autograd.gradgradcheck(fn, [x])

#----------------------------------------------------------------------------

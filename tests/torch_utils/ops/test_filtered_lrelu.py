"""filtered_lrelu reference: against an independent NumPy/SciPy composition (zero insertion, full convolution
read at the padding offset, leaky ReLU, clamp, striding), output sizes, the StyleGAN3 defaults, gradients by
gradcheck/gradgradcheck in float64 (routing of impl='cuda': test_cuda_ops.py)."""

import numpy as np
import pytest
import scipy.signal
import torch

from torch_utils.ops import filtered_lrelu
from torch_utils.ops import upfirdn2d

#----------------------------------------------------------------------------

def _np_resample(x: np.ndarray, f2d: np.ndarray, up: int, down: int, pad: list, flip_filter: bool) -> np.ndarray:
    """upfirdn2d as 'full' convolution of the zero-inserted image, read at an offset: output pixel o (before
    striding) is full[o + taps - 1 - pad0], zero outside the full result."""
    n, c, h, w = x.shape
    u = np.zeros([n, c, h * up, w * up])
    u[:, :, ::up, ::up] = x
    k = f2d[::-1, ::-1] if flip_filter else f2d # Correlating = convolving with the mirrored filter.
    fh, fw = k.shape
    full = np.stack([np.stack([scipy.signal.convolve2d(u[i, j], k, mode='full') for j in range(c)]) for i in range(n)])
    px0, px1, py0, py1 = pad
    rows = np.arange(h * up + py0 + py1 - fh + 1) + fh - 1 - py0
    cols = np.arange(w * up + px0 + px1 - fw + 1) + fw - 1 - px0
    m = max(np.abs(pad)) + fh + fw # A zero margin wide enough for every offset.
    full = np.pad(full, [(0, 0), (0, 0), (m, m), (m, m)])
    out = full[:, :, rows + m][:, :, :, cols + m]
    return out[:, :, ::down, ::down]

def _np_filtered_lrelu(x, fu2d, fd2d, b, up, down, pad, gain, slope, clamp, flip_filter):
    t = x + (b.reshape(1, -1, 1, 1) if b is not None else 0)
    t = _np_resample(t, fu2d * up ** 2, up, 1, pad, flip_filter)
    t = np.where(t > 0, t, t * slope) * gain
    if clamp is not None:
        t = np.clip(t, -clamp, clamp)
    return _np_resample(t, fd2d, 1, down, [0, 0, 0, 0], flip_filter)

def _as_2d(f):
    if f is None:
        return np.ones([1, 1])
    f = f.numpy().astype(np.float64)
    return np.outer(f, f) if f.ndim == 1 else f

def _filter(taps, separable):
    """setup_filter(taps); separable applies to 1D taps (2D taps stay 2D)."""
    if taps is None:
        return None
    return upfirdn2d.setup_filter(taps, separable=(separable and np.ndim(taps) == 1))

def _pad4(padding):
    if isinstance(padding, int):
        return [padding] * 4
    return list(padding) if len(padding) == 4 else [padding[0], padding[0], padding[1], padding[1]]

#----------------------------------------------------------------------------

def test_np_resample_agrees_with_plain_upsampling():
    # The helper itself, on a case with a known answer: box filter + up=2 is nearest-neighbor upsampling.
    x = np.random.default_rng(0).normal(size=[1, 2, 3, 4])
    y = _np_resample(x, np.ones([2, 2]), 2, 1, [1, 0, 1, 0], False)
    np.testing.assert_allclose(y, x.repeat(2, axis=2).repeat(2, axis=3), rtol=1e-12)

CASES = [ # (fu taps, fd taps, separable, up, down, padding, gain, slope, clamp, flip_filter, bias)
    ([1, 3, 3, 1], [1, 3, 3, 1], False, 2, 2, [3, 2, 3, 2], np.sqrt(2), 0.2, None, False, True),
    (np.arange(1, 9), np.arange(8, 0, -1), True, 2, 2, [7, 6, 5, 8], np.sqrt(2), 0.2, None, False, True),
    ([[1, 2], [0.5, 3], [1, 1]], None, False, 1, 1, [1, 0, 2, 0], 1.3, 0.1, 0.4, True, True),
    (None, [[1, 2, 1], [2, 5, 2]], False, 1, 2, [2, 1, 1, -1], 1.0, 0.3, 1.5, False, False),
    ([1, 2, 4, 2, 1, 1], [[1, 1, 2, 1], [1, 3, 1, 2], [2, 1, 1, 1], [1, 1, 1, 4]], True, 4, 2, [4, 5, 3, 6], np.sqrt(2), 0.25, 0.8, True, True),
    (None, None, False, 1, 1, 0, np.sqrt(2), 0.2, None, False, True),
]

@pytest.mark.parametrize('fu_taps,fd_taps,separable,up,down,padding,gain,slope,clamp,flip_filter,bias', CASES)
def test_ref_matches_numpy(fu_taps, fd_taps, separable, up, down, padding, gain, slope, clamp, flip_filter, bias):
    rng = np.random.default_rng(1)
    fu, fd = _filter(fu_taps, separable), _filter(fd_taps, separable)
    x = rng.normal(size=[2, 3, 5, 6])
    b = rng.normal(size=[3]) if bias else None
    expected = _np_filtered_lrelu(x, _as_2d(fu), _as_2d(fd), b, up, down, _pad4(padding), gain, slope, clamp, flip_filter)
    y = filtered_lrelu.filtered_lrelu(torch.tensor(x), fu, fd, torch.tensor(b) if bias else None, up=up, down=down, padding=padding, gain=gain, slope=slope, clamp=clamp, flip_filter=flip_filter)
    assert y.shape == expected.shape and y.dtype == torch.float64
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-6, atol=1e-6) # Filters are float32.

def test_output_size_formula():
    fu = upfirdn2d.setup_filter(np.ones(12), separable=True)
    fd = upfirdn2d.setup_filter(np.ones(6), separable=True)
    x = torch.zeros([1, 2, 9, 7])
    for up, down, padding in [(2, 2, [10, 9, 11, 8]), (1, 2, 8), (4, 1, [0, 1, 2, 3]), (2, 3, [6, 6])]:
        px0, px1, py0, py1 = _pad4(padding)
        y = filtered_lrelu.filtered_lrelu(x, fu, fd, up=up, down=down, padding=padding)
        assert y.shape[3] == (7 * up + px0 + px1 - 11 - 5 + down - 1) // down
        assert y.shape[2] == (9 * up + py0 + py1 - 11 - 5 + down - 1) // down

def test_defaults_are_stylegan3s():
    # No filters, no resampling: a plain leaky ReLU with slope 0.2 and gain sqrt(2), no clamp.
    x = torch.randn([2, 3, 4, 4], dtype=torch.float64) * 10
    b = torch.randn([3], dtype=torch.float64)
    s = x + b.reshape(1, -1, 1, 1)
    torch.testing.assert_close(filtered_lrelu.filtered_lrelu(x, b=b), torch.where(s > 0, s, 0.2 * s) * np.sqrt(2), rtol=1e-12, atol=1e-12)

def test_float32_dtype_kept():
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    y = filtered_lrelu.filtered_lrelu(torch.randn([1, 2, 6, 6]), f, f, torch.zeros([2]), up=2, down=2, padding=3, clamp=1.0)
    assert y.dtype == torch.float32 and y.shape == (1, 2, 6, 6)

def test_rejects_bad_arguments():
    x = torch.randn([1, 2, 4, 4])
    with pytest.raises(AssertionError):
        filtered_lrelu.filtered_lrelu(x, b=torch.zeros([2], dtype=torch.float64)) # Bias dtype must match.
    with pytest.raises(AssertionError):
        filtered_lrelu.filtered_lrelu(x, b=torch.zeros([3]))
    with pytest.raises(AssertionError):
        filtered_lrelu.filtered_lrelu(x, up=0)
    with pytest.raises(AssertionError):
        filtered_lrelu.filtered_lrelu(x, impl='fast')

#----------------------------------------------------------------------------

@pytest.mark.parametrize('fu_taps,fd_taps,separable,kwargs', [
    ([1, 3, 3, 1], [1, 3, 3, 1], False, dict(up=2, down=2, padding=[3, 2, 3, 2])),
    ([1, 2, 4], [4, 1], True, dict(up=2, down=1, padding=[1, 2, 2, 1], clamp=0.7, flip_filter=True, slope=0.1)),
    (None, [[1, 2], [3, 1]], False, dict(up=1, down=2, padding=[1, 1, 0, 1], gain=1.5)),
])
def test_gradcheck_and_gradgradcheck(fu_taps, fd_taps, separable, kwargs):
    fu, fd = _filter(fu_taps, separable), _filter(fd_taps, separable)
    x = torch.randn([1, 2, 3, 3], dtype=torch.float64, requires_grad=True)
    b = torch.randn([2], dtype=torch.float64, requires_grad=True)
    fn = lambda x, b: filtered_lrelu.filtered_lrelu(x, fu, fd, b, **kwargs)
    assert torch.autograd.gradcheck(fn, [x, b])
    assert torch.autograd.gradgradcheck(fn, [x, b])

#----------------------------------------------------------------------------

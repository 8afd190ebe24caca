"""conv2d_resample: every fast path against the plain composition written out in NumPy/SciPy
(zero insertion, padding, FIR filter, correlation with the weight, FIR filter, striding), output sizes,
a hand-checkable case (nearest-neighbor upsampling of a 1x1 convolution), and gradients."""

import numpy as np
import pytest
import scipy.signal
import torch

from torch_utils.ops import conv2d_resample, upfirdn2d

#----------------------------------------------------------------------------

def _np_conv2d_resample(x, w, f2d, up, down, padding, groups, flip_weight, flip_filter):
    """The definition, one step at a time. padding is [x0, x1, y0, y1] of the upsampled image, including
    the filter-centering terms that conv2d_resample() adds on top of the caller's padding."""
    n, c, h, wd = x.shape
    out_c, c_per_group, _kh, _kw = w.shape
    fir = scipy.signal.correlate2d if flip_filter else scipy.signal.convolve2d
    conv = scipy.signal.correlate2d if flip_weight else scipy.signal.convolve2d

    z = np.zeros([n, c, h * up, wd * up])
    z[:, :, ::up, ::up] = x
    px0, px1, py0, py1 = padding
    z = np.pad(z, [(0, 0), (0, 0), (max(py0, 0), max(py1, 0)), (max(px0, 0), max(px1, 0))])
    z = z[:, :, max(-py0, 0) : z.shape[2] - max(-py1, 0), max(-px0, 0) : z.shape[3] - max(-px1, 0)]
    if up > 1:
        z = np.stack([np.stack([fir(z[i, j], f2d * up**2, mode='valid') for j in range(c)]) for i in range(n)])

    out_per_group = out_c // groups
    y = np.stack([np.stack([
        sum(conv(z[i, (o // out_per_group) * c_per_group + k], w[o, k], mode='valid') for k in range(c_per_group))
        for o in range(out_c)]) for i in range(n)])

    if down > 1:
        y = np.stack([np.stack([fir(y[i, o], f2d, mode='valid') for o in range(out_c)]) for i in range(n)])
        y = y[:, :, ::down, ::down]
    return y

def _centering_padding(padding, fw, fh, up, down):
    """The caller's padding plus the terms that keep the filter centered (as upsample2d/downsample2d)."""
    px0, px1, py0, py1 = [padding] * 4 if isinstance(padding, int) else padding
    if up > 1:
        px0, px1, py0, py1 = px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2, py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2
    if down > 1:
        px0, px1, py0, py1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2, py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2
    return [px0, px1, py0, py1]

#----------------------------------------------------------------------------

CASES = [ # (kernel, up, down, padding, groups, flip_weight, flip_filter, filter taps) covering each code path.
    (3, 1, 1, 1, 1, True, False, None),                     # plain conv2d
    (3, 1, 1, [1, 0, 2, 1], 1, False, False, None),         # asymmetric padding: pad, then conv2d
    (3, 1, 1, [-1, 0, 1, 1], 2, True, False, None),         # cropping, grouped
    (1, 1, 2, 0, 1, True, False, [1, 3, 3, 1]),             # 1x1 + down: downsample first
    (1, 2, 1, 0, 1, True, False, [1, 3, 3, 1]),             # 1x1 + up: upsample last
    (3, 1, 2, 1, 1, True, False, [1, 3, 3, 1]),             # down: strided conv
    (3, 1, 2, [1, 2, 0, 1], 2, False, True, [1, 2, 4]),     # down, grouped, asymmetric filter and padding
    (3, 2, 1, 1, 1, True, False, [1, 3, 3, 1]),             # up: transposed conv (the StyleGAN2 synthesis layer)
    (3, 2, 1, 1, 2, False, True, [1, 2, 4]),                # up, grouped transposed conv, flips
    (4, 2, 1, [2, 1, 1, 2], 1, True, False, [1, 3, 3, 1]),  # up, even kernel
    (3, 2, 2, 1, 1, True, False, [1, 3, 3, 1]),             # up and down
    (3, 1, 2, 1, 1, True, False, None),                     # down without a filter
    (3, 3, 1, [0, 1, 2, 0], 1, True, False, [1, 2, 1]),     # up by 3
]

@pytest.mark.parametrize('k,up,down,padding,groups,flip_weight,flip_filter,taps', CASES)
def test_matches_composition(k, up, down, padding, groups, flip_weight, flip_filter, taps):
    rng = np.random.default_rng(0)
    x = rng.normal(size=[2, 4, 5, 6])
    w = rng.normal(size=[6, 4 // groups, k, k])
    f = upfirdn2d.setup_filter(taps) if taps is not None else None
    f2d = np.ones([1, 1]) if f is None else f.numpy().astype(np.float64)
    pad = _centering_padding(padding, f2d.shape[1], f2d.shape[0], up, down)
    expected = _np_conv2d_resample(x, w, f2d, up, down, pad, groups, flip_weight, flip_filter)
    y = conv2d_resample.conv2d_resample(torch.tensor(x), torch.tensor(w), f=f, up=up, down=down, padding=padding, groups=groups, flip_weight=flip_weight, flip_filter=flip_filter)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-6, atol=1e-6) # f is float32.

@pytest.mark.parametrize('k', [1, 3])
def test_output_sizes(k):
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    x = torch.randn([1, 4, 8, 6])
    w = torch.randn([5, 4, k, k])
    assert conv2d_resample.conv2d_resample(x, w, f=f, up=2, padding=k // 2).shape == (1, 5, 16, 12)
    assert conv2d_resample.conv2d_resample(x, w, f=f, down=2, padding=k // 2).shape == (1, 5, 4, 3)
    assert conv2d_resample.conv2d_resample(x, w, padding=k // 2).shape == (1, 5, 8, 6)

def test_nearest_neighbor_upsampling_of_1x1_conv():
    x = torch.randn([2, 3, 4, 5], dtype=torch.float64)
    w = torch.randn([2, 3, 1, 1], dtype=torch.float64)
    y = conv2d_resample.conv2d_resample(x, w, f=upfirdn2d.setup_filter([1, 1]), up=2)
    expected = torch.einsum('oi,nihw->nohw', w[:, :, 0, 0], x).repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    torch.testing.assert_close(y, expected)

#----------------------------------------------------------------------------

@pytest.mark.parametrize('k,up,down,groups', [(3, 2, 1, 1), (3, 1, 2, 2), (1, 1, 2, 1)])
def test_gradcheck(k, up, down, groups):
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    x = torch.randn([1, 2, 3, 3], dtype=torch.float64, requires_grad=True)
    w = torch.randn([2, 2 // groups, k, k], dtype=torch.float64, requires_grad=True)
    fn = lambda x, w: conv2d_resample.conv2d_resample(x, w, f=f, up=up, down=down, padding=k // 2, groups=groups)
    assert torch.autograd.gradcheck(fn, [x, w])

def test_gradgradcheck_upsampling():
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    x = torch.randn([1, 1, 2, 2], dtype=torch.float64, requires_grad=True)
    w = torch.randn([1, 1, 3, 3], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda x, w: conv2d_resample.conv2d_resample(x, w, f=f, up=2, padding=1), [x, w])

#----------------------------------------------------------------------------

@pytest.mark.parametrize('k,up,down,taps', [(3, 2, 1, [1, 3, 3, 1]), (3, 1, 2, [1, 3, 3, 1]), (1, 2, 1, [1, 3, 3, 1]), (1, 1, 2, [1, 3, 3, 1]),
                                            (3, 3, 1, [1, 2, 3, 2, 1]), (4, 2, 1, [1, 3, 3, 1]), (3, 2, 2, [1, 3, 3, 1])])
def test_resampling_is_centered(k, up, down, taps):
    # Centered filtering commutes with mirroring: flipping the image and the kernel flips the output. This pins the
    # filter-centering padding without restating its formula (test_matches_composition takes it as given). Filter
    # length and factor share their parity (even taps for factor 2, as StyleGAN uses), else no centering exists.
    x = torch.randn([1, 2, 8, 8], dtype=torch.float64)
    w = torch.randn([3, 2, k, k], dtype=torch.float64)
    f = upfirdn2d.setup_filter(taps) # float32, as the op requires; x and w in float64
    pad = (k - 1) // 2 if k % 2 else [k // 2 - 1, k // 2] * 2
    run = lambda x, w, pad: conv2d_resample.conv2d_resample(x, w, f=f, up=up, down=down, padding=pad)
    flipped_pad = pad if isinstance(pad, int) else [pad[1], pad[0], pad[3], pad[2]]
    torch.testing.assert_close(run(x.flip([2, 3]), w.flip([2, 3]), flipped_pad), run(x, w, pad).flip([2, 3]))

"""2D convolution with optional FIR up/downsampling, fused into as few passes as possible.

conv2d_resample(x, w, f, up, down, padding) is defined as: upsample x by zero insertion and pad it
(padding applies to the upsampled image, before any filtering), FIR-filter with f (gain up^2), correlate
with w, FIR-filter with f and keep every down-th pixel. Every step is linear and shift-invariant, so the
fast paths below (strided and transposed convolutions, 1x1 convolutions at the cheaper resolution) give
the same numbers as that composition. Official network pickles call this function by name; semantics
follow StyleGAN2-ADA."""

from typing import List, Optional, Sequence, Union

import torch

from .. import misc
from . import conv2d_gradfix
from . import upfirdn2d
from .upfirdn2d import _parse_padding, _get_filter_size

#----------------------------------------------------------------------------

def _get_weight_shape(w: torch.Tensor) -> List[int]:
    return [int(sz) for sz in w.shape]

#----------------------------------------------------------------------------

def _conv2d_wrapper(x: torch.Tensor, w: torch.Tensor, stride: int = 1, padding: Union[int, Sequence[int]] = 0, groups: int = 1, transpose: bool = False, flip_weight: bool = True) -> torch.Tensor:
    """conv2d (or conv_transpose2d) through conv2d_gradfix; flip_weight=True means correlation, as torch does."""
    _out_channels, _in_channels_per_group, kh, kw = _get_weight_shape(w)
    if not flip_weight and (kw > 1 or kh > 1):
        w = w.flip([2, 3])
    op = conv2d_gradfix.conv_transpose2d if transpose else conv2d_gradfix.conv2d
    return op(x, w, stride=stride, padding=padding, groups=groups)

#----------------------------------------------------------------------------

@misc.profiled_function
def conv2d_resample(
    x:              torch.Tensor,           # Input [batch, in_channels, height, width].
    w:              torch.Tensor,           # Weight [out_channels, in_channels // groups, kh, kw], same dtype as x.
    f:              Optional[torch.Tensor] = None,  # FIR filter from upfirdn2d.setup_filter(), None = identity.
    up:             int = 1,                # Integer upsampling factor.
    down:           int = 1,                # Integer downsampling factor.
    padding:        Union[int, Sequence[int]] = 0,  # Padding of the upsampled image: int, [x, y] or [x0, x1, y0, y1].
    groups:         int = 1,                # Number of groups for a grouped convolution.
    flip_weight:    bool = True,            # True = correlation (torch's conv2d), False = true convolution.
    flip_filter:    bool = False,           # False = convolve with f, True = correlate with f.
) -> torch.Tensor:
    """Convolve x with w, upsampling by up before and downsampling by down after, both with filter f."""
    assert isinstance(x, torch.Tensor) and (x.ndim == 4)
    assert isinstance(w, torch.Tensor) and (w.ndim == 4) and (w.dtype == x.dtype)
    assert f is None or (isinstance(f, torch.Tensor) and f.ndim in [1, 2] and f.dtype == torch.float32)
    assert isinstance(up, int) and (up >= 1)
    assert isinstance(down, int) and (down >= 1)
    assert isinstance(groups, int) and (groups >= 1)
    out_channels, in_channels_per_group, kh, kw = _get_weight_shape(w)
    fw, fh = _get_filter_size(f)
    px0, px1, py0, py1 = _parse_padding(padding)

    # Extra padding that keeps the filter centered, so that output = input * up / down for
    # padding = kernel_size // 2, exactly as upsample2d() and downsample2d() do.
    if up > 1:
        px0 += (fw + up - 1) // 2
        px1 += (fw - up) // 2
        py0 += (fh + up - 1) // 2
        py1 += (fh - up) // 2
    if down > 1:
        px0 += (fw - down + 1) // 2
        px1 += (fw - down) // 2
        py0 += (fh - down + 1) // 2
        py1 += (fh - down) // 2

    # 1x1 kernel, downsampling only: downsample first, then convolve at the lower resolution.
    if kw == 1 and kh == 1 and (down > 1 and up == 1):
        x = upfirdn2d.upfirdn2d(x=x, f=f, down=down, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
        return _conv2d_wrapper(x=x, w=w, groups=groups, flip_weight=flip_weight)

    # 1x1 kernel, upsampling only: convolve first, then upsample.
    if kw == 1 and kh == 1 and (up > 1 and down == 1):
        x = _conv2d_wrapper(x=x, w=w, groups=groups, flip_weight=flip_weight)
        return upfirdn2d.upfirdn2d(x=x, f=f, up=up, padding=[px0, px1, py0, py1], gain=up**2, flip_filter=flip_filter)

    # Downsampling only: filter, then a strided convolution that skips the discarded pixels.
    if down > 1 and up == 1:
        x = upfirdn2d.upfirdn2d(x=x, f=f, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
        return _conv2d_wrapper(x=x, w=w, stride=down, groups=groups, flip_weight=flip_weight)

    # Upsampling (and possibly downsampling): a strided transposed convolution does the zero insertion
    # and the convolution at once; the filter then runs on its output, with the padding that the
    # transposed convolution could not absorb (it only supports equal, non-negative padding).
    if up > 1:
        if groups == 1:
            w = w.transpose(0, 1)
        else:
            w = w.reshape(groups, out_channels // groups, in_channels_per_group, kh, kw)
            w = w.transpose(1, 2)
            w = w.reshape(groups * in_channels_per_group, out_channels // groups, kh, kw)
        px0 -= kw - 1
        px1 -= kw - up
        py0 -= kh - 1
        py1 -= kh - up
        pxt = max(min(-px0, -px1), 0)
        pyt = max(min(-py0, -py1), 0)
        x = _conv2d_wrapper(x=x, w=w, stride=up, padding=[pyt, pxt], groups=groups, transpose=True, flip_weight=(not flip_weight))
        x = upfirdn2d.upfirdn2d(x=x, f=f, padding=[px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt], gain=up**2, flip_filter=flip_filter)
        if down > 1:
            x = upfirdn2d.upfirdn2d(x=x, f=f, down=down, flip_filter=flip_filter)
        return x

    # No resampling and symmetric non-negative padding: a plain conv2d.
    if up == 1 and down == 1:
        if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
            return _conv2d_wrapper(x=x, w=w, padding=[py0, px0], groups=groups, flip_weight=flip_weight)

    # Anything else (no resampling with asymmetric or negative padding): pad or crop, then convolve.
    x = upfirdn2d.upfirdn2d(x=x, f=None, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
    return _conv2d_wrapper(x=x, w=w, groups=groups, flip_weight=flip_weight)

#----------------------------------------------------------------------------

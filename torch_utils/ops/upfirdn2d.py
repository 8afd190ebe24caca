"""Upsample, FIR-filter, downsample: the anti-aliased resampling behind StyleGAN's up/down layers.

upfirdn2d(x, f, up, down, padding) = (1) insert up-1 zeros after every pixel, (2) zero-pad (negative
padding crops), (3) convolve every channel with the 2D filter f (or with the 1D filter f along both
axes), (4) keep every down-th pixel. filter2d / upsample2d / downsample2d choose the padding so that the
output is the input size, times up or divided by down. Official network pickles call these functions and
store filters made by setup_filter(), so names, defaults, filter shapes and numerics follow
StyleGAN2-ADA exactly. The reference below is the definition. impl='cuda' on a CUDA tensor runs the
direct-loop kernel of upfirdn2d.cu instead (a 1D filter as two separable passes), built and checked
against the reference at first use (cuda_kernels.py); its gradient is the same op transposed, so it is
differentiable to any order. Everything else, or a kernel that fails to build or to match, takes the
reference path."""

from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from . import conv2d_gradfix
from . import cuda_kernels

#----------------------------------------------------------------------------

IntOrPair = Union[int, Sequence[int]]
Padding = Union[int, Sequence[int]]

def _parse_scaling(scaling: IntOrPair) -> Tuple[int, int]:
    """up/down as int or [x, y] -> (sx, sy)."""
    if isinstance(scaling, int):
        scaling = [scaling, scaling]
    assert isinstance(scaling, (list, tuple)) and len(scaling) == 2
    assert all(isinstance(s, int) for s in scaling)
    sx, sy = scaling
    assert sx >= 1 and sy >= 1
    return sx, sy

def _parse_padding(padding: Padding) -> Tuple[int, int, int, int]:
    """padding as int, [x, y] or [x0, x1, y0, y1] -> (x0, x1, y0, y1)."""
    if isinstance(padding, int):
        padding = [padding, padding]
    assert isinstance(padding, (list, tuple))
    assert all(isinstance(p, int) for p in padding)
    if len(padding) == 2:
        padx, pady = padding
        padding = [padx, padx, pady, pady]
    assert len(padding) == 4
    padx0, padx1, pady0, pady1 = padding
    return padx0, padx1, pady0, pady1

def _get_filter_size(f: Optional[torch.Tensor]) -> Tuple[int, int]:
    """(width, height) of a filter from setup_filter(); a 1D filter is as tall as it is wide, None is 1x1."""
    if f is None:
        return 1, 1
    assert isinstance(f, torch.Tensor) and f.ndim in [1, 2]
    fw = int(f.shape[-1])
    fh = int(f.shape[0])
    assert fw >= 1 and fh >= 1
    return fw, fh

#----------------------------------------------------------------------------

def setup_filter(
    f:              Union[None, float, Sequence, np.ndarray, torch.Tensor],  # Filter taps: None (= [1]), 1D or 2D.
    device:         torch.device = torch.device('cpu'),                     # Device of the result.
    normalize:      bool = True,            # Scale the taps to sum to 1 (unit DC gain).
    flip_filter:    bool = False,           # Flip the taps (convolution <-> correlation).
    gain:           float = 1,              # Overall gain of the 2D filter; a 1D filter gets sqrt(gain), applied once per axis.
    separable:      Optional[bool] = None,  # Keep a 1D filter 1D (applied per axis)? None = only when it has >= 8 taps.
) -> torch.Tensor:
    """Float32 filter for upfirdn2d(): 1D (separable) or 2D (a 1D input becomes its outer product)."""
    if f is None:
        f = 1
    f = torch.as_tensor(f, dtype=torch.float32)
    assert f.ndim in [0, 1, 2]
    assert f.numel() > 0
    if f.ndim == 0:
        f = f[np.newaxis]

    # Short 1D filters become 2D by default: the StyleGAN networks store e.g. [1,3,3,1] as a 4x4 buffer,
    # and official pickles carry that shape.
    if separable is None:
        separable = (f.ndim == 1 and f.numel() >= 8)
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    assert f.ndim == (1 if separable else 2)

    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f * (gain ** (f.ndim / 2))
    return f.to(device=device)

#----------------------------------------------------------------------------

def upfirdn2d(
    x:              torch.Tensor,           # Input [batch, channels, height, width].
    f:              Optional[torch.Tensor], # Filter from setup_filter() (float32, 1D or 2D), None = identity.
    up:             IntOrPair = 1,          # Upsampling factor: int or [x, y].
    down:           IntOrPair = 1,          # Downsampling factor: int or [x, y].
    padding:        Padding = 0,            # Padding of the upsampled image: int, [x, y] or [x0, x1, y0, y1]; negative crops.
    flip_filter:    bool = False,           # False = convolution (flipped taps), True = correlation.
    gain:           float = 1,              # Overall gain of the filter.
    impl:           str = 'cuda',           # 'cuda' = compiled kernel where one is loaded, 'ref' = always the reference.
) -> torch.Tensor:
    """Pad, upsample, filter and downsample a batch of 2D images (see the module docstring).

    Output size: ((in * up + pad0 + pad1 - (taps - 1)) + down - 1) // down along each axis."""
    assert isinstance(x, torch.Tensor)
    assert impl in ['ref', 'cuda']
    plugin = cuda_kernels.plugin_for('upfirdn2d', _self_check, x, impl)
    if plugin is not None:
        return _upfirdn2d_cuda(plugin, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain).apply(x, f)
    return _upfirdn2d_ref(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain)

#----------------------------------------------------------------------------

def _upfirdn2d_ref(x: torch.Tensor, f: Optional[torch.Tensor], up: IntOrPair = 1, down: IntOrPair = 1, padding: Padding = 0, flip_filter: bool = False, gain: float = 1) -> torch.Tensor:
    """Reference upfirdn2d() in plain PyTorch ops (differentiable to any order through conv2d_gradfix)."""
    assert isinstance(x, torch.Tensor) and x.ndim == 4
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    assert isinstance(f, torch.Tensor) and f.ndim in [1, 2]
    assert f.dtype == torch.float32 and not f.requires_grad
    batch_size, num_channels, in_height, in_width = x.shape
    upx, upy = _parse_scaling(up)
    downx, downy = _parse_scaling(down)
    padx0, padx1, pady0, pady1 = _parse_padding(padding)

    # Zero insertion: every pixel is followed by up-1 zeros along each axis (also after the last one).
    x = x.reshape([batch_size, num_channels, in_height, 1, in_width, 1])
    x = torch.nn.functional.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
    x = x.reshape([batch_size, num_channels, in_height * upy, in_width * upx])

    # Positive padding adds zeros, negative padding crops.
    x = torch.nn.functional.pad(x, [max(padx0, 0), max(padx1, 0), max(pady0, 0), max(pady1, 0)])
    x = x[:, :, max(-pady0, 0) : x.shape[2] - max(-pady1, 0), max(-padx0, 0) : x.shape[3] - max(-padx1, 0)]

    # conv2d() correlates, so flipping the taps gives a true convolution. One group per channel.
    f = f * (gain ** (f.ndim / 2))
    f = f.to(x.dtype)
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f[np.newaxis, np.newaxis].repeat([num_channels, 1] + [1] * f.ndim)
    if f.ndim == 4:
        x = conv2d_gradfix.conv2d(input=x, weight=f, groups=num_channels)
    else:
        x = conv2d_gradfix.conv2d(input=x, weight=f.unsqueeze(2), groups=num_channels)
        x = conv2d_gradfix.conv2d(input=x, weight=f.unsqueeze(3), groups=num_channels)

    return x[:, :, ::downy, ::downx]

#----------------------------------------------------------------------------

_upfirdn2d_cuda_cache = dict()

def _upfirdn2d_cuda(plugin: Any, up: IntOrPair = 1, down: IntOrPair = 1, padding: Padding = 0, flip_filter: bool = False, gain: float = 1) -> type:
    """autograd.Function class running upfirdn2d() on the extension plugin, differentiable to any order.

    Any extension with an upfirdn2d(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip, gain)
    function works (filtered_lrelu's has one too)."""
    upx, upy = _parse_scaling(up)
    downx, downy = _parse_scaling(down)
    padx0, padx1, pady0, pady1 = _parse_padding(padding)
    key = (plugin, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip_filter, gain)
    if key in _upfirdn2d_cuda_cache:
        return _upfirdn2d_cuda_cache[key]

    class Upfirdn2dCuda(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, f):
            assert isinstance(x, torch.Tensor) and x.ndim == 4
            if f is None:
                f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
            assert isinstance(f, torch.Tensor) and f.ndim in [1, 2]
            assert f.dtype == torch.float32 and not f.requires_grad
            ctx.save_for_backward(f)
            ctx.in_size = x.shape[2:]
            return plugin.upfirdn2d(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip_filter, gain)

        @staticmethod
        def backward(ctx, dy):
            f, = ctx.saved_tensors
            dx = None
            if ctx.needs_input_grad[0]:
                dx = _upfirdn2d_cuda_transposed(plugin, dy, f, ctx.in_size, up=[upx, upy], down=[downx, downy], padding=[padx0, padx1, pady0, pady1], flip_filter=flip_filter, gain=gain)
            return dx, None

    _upfirdn2d_cuda_cache[key] = Upfirdn2dCuda
    return Upfirdn2dCuda

def _upfirdn2d_cuda_transposed(plugin: Any, dy: torch.Tensor, f: torch.Tensor, in_size: Sequence[int], up: IntOrPair, down: IntOrPair, padding: Padding, flip_filter: bool, gain: float) -> torch.Tensor:
    """Gradient of upfirdn2d(x, f, up, down, padding) w.r.t. x (in_size = x.shape[2:]) given dy: the same op with
    up and down swapped and the taps mirrored. Input pixel i and output pixel o meet at tap i * up + pad0 - o * down,
    which the mirrored filter sees at o * down - i * up + (taps - 1 - pad0); pad1 makes the result in_size."""
    upx, upy = _parse_scaling(up)
    downx, downy = _parse_scaling(down)
    padx0, _, pady0, _ = _parse_padding(padding)
    fw, fh = _get_filter_size(f)
    in_h, in_w = in_size
    out_h, out_w = dy.shape[2:]
    p = [
        fw - padx0 - 1,
        in_w * upx - out_w * downx + padx0 - upx + 1,
        fh - pady0 - 1,
        in_h * upy - out_h * downy + pady0 - upy + 1,
    ]
    return _upfirdn2d_cuda(plugin, up=[downx, downy], down=[upx, upy], padding=p, flip_filter=(not flip_filter), gain=gain).apply(dy, f)

#----------------------------------------------------------------------------

def _self_check(plugin: Any, device: torch.device) -> Optional[str]:
    """2D, separable and missing filters with up, down, crops and both filter orientations."""
    gen = torch.Generator().manual_seed(2)
    taps = lambda *shape: torch.rand(shape, generator=gen) + 0.1
    cases = [ # (filter, up, down, padding, flip_filter, gain)
        (setup_filter([1, 3, 3, 1]), 2, 1, [2, 1], False, 4),
        (setup_filter(taps(8), separable=True), 1, 2, [3, 4, 2, 5], True, 1),
        (setup_filter(taps(3, 2)), [1, 2], [2, 1], [1, -1, 2, 0], False, 0.7),
        (setup_filter(taps(5), separable=True), [3, 1], [1, 3], [-1, 2, 4, 1], False, 2),
        (None, 3, 2, [1, -1, 0, 2], True, 1),
    ]
    for i, (f, up, down, padding, flip_filter, gain) in enumerate(cases):
        f = f.to(device) if f is not None else None
        fn = lambda x: _upfirdn2d_cuda(plugin, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain).apply(x, f)
        ref = lambda x: _upfirdn2d_ref(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain)
        x = torch.randn([2, 3, 7, 6], generator=gen, dtype=torch.float64)
        mismatch = cuda_kernels.check_against_reference(fn, ref, [x], device, f'case {i}: up={up} down={down} padding={padding}')
        if mismatch is not None:
            return mismatch
    return None

#----------------------------------------------------------------------------

def filter2d(x: torch.Tensor, f: Optional[torch.Tensor], padding: Padding = 0, flip_filter: bool = False, gain: float = 1, impl: str = 'cuda') -> torch.Tensor:
    """Filter x with f; padding is extra, beyond what keeps the output the size of the input."""
    padx0, padx1, pady0, pady1 = _parse_padding(padding)
    fw, fh = _get_filter_size(f)
    p = [
        padx0 + fw // 2,
        padx1 + (fw - 1) // 2,
        pady0 + fh // 2,
        pady1 + (fh - 1) // 2,
    ]
    return upfirdn2d(x, f, padding=p, flip_filter=flip_filter, gain=gain, impl=impl)

#----------------------------------------------------------------------------

def upsample2d(x: torch.Tensor, f: Optional[torch.Tensor], up: IntOrPair = 2, padding: Padding = 0, flip_filter: bool = False, gain: float = 1, impl: str = 'cuda') -> torch.Tensor:
    """Upsample x by up with filter f; output = input * up (plus padding)."""
    upx, upy = _parse_scaling(up)
    padx0, padx1, pady0, pady1 = _parse_padding(padding)
    fw, fh = _get_filter_size(f)
    p = [
        padx0 + (fw + upx - 1) // 2,
        padx1 + (fw - upx) // 2,
        pady0 + (fh + upy - 1) // 2,
        pady1 + (fh - upy) // 2,
    ]
    # Zero insertion keeps 1 of upx*upy pixels, so the gain restores the mean brightness.
    return upfirdn2d(x, f, up=up, padding=p, flip_filter=flip_filter, gain=gain*upx*upy, impl=impl)

#----------------------------------------------------------------------------

def downsample2d(x: torch.Tensor, f: Optional[torch.Tensor], down: IntOrPair = 2, padding: Padding = 0, flip_filter: bool = False, gain: float = 1, impl: str = 'cuda') -> torch.Tensor:
    """Downsample x by down with filter f; output = input / down (plus padding)."""
    downx, downy = _parse_scaling(down)
    padx0, padx1, pady0, pady1 = _parse_padding(padding)
    fw, fh = _get_filter_size(f)
    p = [
        padx0 + (fw - downx + 1) // 2,
        padx1 + (fw - downx) // 2,
        pady0 + (fh - downy + 1) // 2,
        pady1 + (fh - downy) // 2,
    ]
    return upfirdn2d(x, f, down=down, padding=p, flip_filter=flip_filter, gain=gain, impl=impl)

#----------------------------------------------------------------------------

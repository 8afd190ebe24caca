"""Filtered leaky ReLU: the alias-free nonlinearity of StyleGAN3 (upsample, leaky ReLU, downsample).

filtered_lrelu(x) = downsample(clamp(lrelu(upsample(x + b)) * gain)), where upsample is
upfirdn2d(fu, up, padding, gain=up**2) (so a constant stays a constant) and downsample is upfirdn2d(fd, down):
the nonlinearity runs at a higher sampling rate and the result is low-pass filtered back, which keeps the
aliasing it creates small. Official StyleGAN3 pickles call it by this name, so the signature, defaults and
numerics follow StyleGAN3's op. The reference below composes bias_act and upfirdn2d and is the definition.
impl='cuda' on a CUDA tensor runs the kernels of filtered_lrelu.cu instead (the upsampling filter, bias,
leaky ReLU and clamp fused in one pass that records each pixel's branch for the backward pass), built and
checked against the reference at first use (cuda_kernels.py). Everything else, or a kernel that fails to
build or to match, takes the reference path."""

from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from . import bias_act
from . import cuda_kernels
from . import upfirdn2d
from .. import misc

#----------------------------------------------------------------------------

def _check_args(x: torch.Tensor, b: Optional[torch.Tensor], up: int, down: int, padding: upfirdn2d.Padding, gain: float, slope: float, clamp: Optional[float]) -> Tuple[int, int, int, int]:
    """Validate the arguments shared by both implementations; padding -> (x0, x1, y0, y1)."""
    assert isinstance(x, torch.Tensor) and x.ndim == 4
    if b is not None:
        assert isinstance(b, torch.Tensor) and b.dtype == x.dtype
        misc.assert_shape(b, [x.shape[1]])
    assert isinstance(up, int) and up >= 1
    assert isinstance(down, int) and down >= 1
    assert gain == float(gain) and gain > 0
    assert slope == float(slope) and slope >= 0
    assert clamp is None or (clamp == float(clamp) and clamp >= 0)
    return upfirdn2d._parse_padding(padding)

#----------------------------------------------------------------------------

def filtered_lrelu(
    x:              torch.Tensor,                   # Input [batch, channels, height, width].
    fu:             Optional[torch.Tensor] = None,  # Upsampling filter from upfirdn2d.setup_filter() (1D or 2D), None = identity.
    fd:             Optional[torch.Tensor] = None,  # Downsampling filter, same conventions as fu.
    b:              Optional[torch.Tensor] = None,  # Bias [channels] of x's dtype, added before upsampling, or None.
    up:             int = 1,                        # Upsampling factor (>= 1).
    down:           int = 1,                        # Downsampling factor (>= 1).
    padding:        Union[int, Sequence[int]] = 0,  # Padding of the upsampled image: int, [x, y] or [x0, x1, y0, y1]; negative crops.
    gain:           float = np.sqrt(2),             # Scale after the leaky ReLU (> 0).
    slope:          float = 0.2,                    # Leaky ReLU slope for negative inputs (>= 0).
    clamp:          Optional[float] = None,         # Clamp to [-clamp, clamp] after the gain, None = no clamping.
    flip_filter:    bool = False,                   # False = convolution, True = correlation, for both filters.
    impl:           str = 'cuda',                   # 'cuda' = compiled kernel where one is loaded, 'ref' = always the reference.
) -> torch.Tensor:
    """Bias, upsample, leaky ReLU, gain, clamp, downsample (see the module docstring).

    Output size: (in * up + pad0 + pad1 - (fu_taps - 1) - (fd_taps - 1) + down - 1) // down along each axis."""
    assert isinstance(x, torch.Tensor)
    assert impl in ['ref', 'cuda']
    plugin = cuda_kernels.plugin_for('filtered_lrelu', _self_check, x, impl)
    if plugin is not None:
        return _filtered_lrelu_cuda(plugin, x, fu=fu, fd=fd, b=b, up=up, down=down, padding=padding, gain=gain, slope=slope, clamp=clamp, flip_filter=flip_filter)
    return _filtered_lrelu_ref(x, fu=fu, fd=fd, b=b, up=up, down=down, padding=padding, gain=gain, slope=slope, clamp=clamp, flip_filter=flip_filter)

#----------------------------------------------------------------------------

def _filtered_lrelu_ref(x: torch.Tensor, fu: Optional[torch.Tensor] = None, fd: Optional[torch.Tensor] = None, b: Optional[torch.Tensor] = None, up: int = 1, down: int = 1, padding: upfirdn2d.Padding = 0, gain: float = np.sqrt(2), slope: float = 0.2, clamp: Optional[float] = None, flip_filter: bool = False) -> torch.Tensor:
    """Reference filtered_lrelu() from the reference bias_act() and upfirdn2d() (differentiable to any order)."""
    px0, px1, py0, py1 = _check_args(x, b, up, down, padding, gain, slope, clamp)
    fu_w, fu_h = upfirdn2d._get_filter_size(fu)
    fd_w, fd_h = upfirdn2d._get_filter_size(fd)
    batch_size, channels, in_h, in_w = x.shape
    in_dtype = x.dtype
    out_w = (in_w * up + (px0 + px1) - (fu_w - 1) - (fd_w - 1) + (down - 1)) // down
    out_h = (in_h * up + (py0 + py1) - (fu_h - 1) - (fd_h - 1) + (down - 1)) // down

    x = bias_act.bias_act(x=x, b=b, impl='ref')
    x = upfirdn2d.upfirdn2d(x=x, f=fu, up=up, padding=[px0, px1, py0, py1], gain=up ** 2, flip_filter=flip_filter, impl='ref')
    x = bias_act.bias_act(x=x, act='lrelu', alpha=slope, gain=gain, clamp=clamp, impl='ref')
    x = upfirdn2d.upfirdn2d(x=x, f=fd, down=down, flip_filter=flip_filter, impl='ref')

    misc.assert_shape(x, [batch_size, channels, out_h, out_w])
    assert x.dtype == in_dtype
    return x

#----------------------------------------------------------------------------

def _filtered_lrelu_cuda(plugin: Any, x: torch.Tensor, fu: Optional[torch.Tensor] = None, fd: Optional[torch.Tensor] = None, b: Optional[torch.Tensor] = None, up: int = 1, down: int = 1, padding: upfirdn2d.Padding = 0, gain: float = np.sqrt(2), slope: float = 0.2, clamp: Optional[float] = None, flip_filter: bool = False) -> torch.Tensor:
    """filtered_lrelu() on the extension plugin: the fused upsampling half, then upfirdn2d for the downsampling half."""
    padding = _check_args(x, b, up, down, padding, gain, slope, clamp)
    fu = fu if fu is not None else torch.ones([1, 1], dtype=torch.float32, device=x.device)
    t = _filtered_lrelu_up_cuda(plugin, up=up, padding=padding, gain=float(gain), slope=float(slope), clamp=clamp, flip_filter=flip_filter).apply(x, fu, b)
    return upfirdn2d._upfirdn2d_cuda(plugin, down=down, flip_filter=flip_filter).apply(t, fd)

#----------------------------------------------------------------------------

_filtered_lrelu_up_cuda_cache = dict()

def _filtered_lrelu_up_cuda(plugin: Any, up: int, padding: Tuple[int, int, int, int], gain: float, slope: float, clamp: Optional[float], flip_filter: bool) -> type:
    """autograd.Function class of the fused upsampling half t = clamp(lrelu(upfirdn2d(x + b, fu, up)) * gain).

    The kernel records per pixel of t which branch the activation took; the backward pass multiplies by that
    branch's slope (LReluMask, its own transpose) and transposes the upsampling. Both steps are linear
    Functions of the incoming gradient, so the backward pass is differentiable again (the second derivative
    w.r.t. x is zero: the activation is piecewise linear)."""
    px0, px1, py0, py1 = padding
    clamp = float(clamp if clamp is not None else -1)
    key = (plugin, up, px0, px1, py0, py1, gain, slope, clamp, flip_filter)
    if key in _filtered_lrelu_up_cuda_cache:
        return _filtered_lrelu_up_cuda_cache[key]

    class LReluMask(torch.autograd.Function):
        @staticmethod
        def forward(ctx, g, states):
            ctx.save_for_backward(states)
            return plugin.lrelu_mask(g, states, gain, slope)

        @staticmethod
        def backward(ctx, dg):
            states, = ctx.saved_tensors
            return LReluMask.apply(dg, states), None

    class FilteredLReluUpCuda(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, fu, b):
            assert fu.dtype == torch.float32 and not fu.requires_grad and fu.ndim in [1, 2]
            t, states = plugin.filtered_lrelu_up(x, fu, x.new_empty([0]) if b is None else b, up, px0, px1, py0, py1, gain, slope, clamp, flip_filter)
            ctx.save_for_backward(fu, states)
            ctx.in_size = x.shape[2:]
            return t

        @staticmethod
        def backward(ctx, dt):
            fu, states = ctx.saved_tensors
            g = LReluMask.apply(dt, states)
            dx = upfirdn2d._upfirdn2d_cuda_transposed(plugin, g, fu, ctx.in_size, up=up, down=1, padding=[px0, px1, py0, py1], flip_filter=flip_filter, gain=up ** 2)
            db = dx.sum([0, 2, 3]) if ctx.needs_input_grad[2] else None
            return dx, None, db

    _filtered_lrelu_up_cuda_cache[key] = FilteredLReluUpCuda
    return FilteredLReluUpCuda

#----------------------------------------------------------------------------

def _self_check(plugin: Any, device: torch.device) -> Optional[str]:
    """Separable and 2D filters, up- and downsampling, crops, clamp, flip, with and without bias."""
    gen = torch.Generator().manual_seed(3)
    taps = lambda *shape: torch.rand(shape, generator=gen) + 0.1
    cases = [ # (fu, fd, up, down, padding, gain, slope, clamp, flip_filter, bias)
        (upfirdn2d.setup_filter(taps(8), separable=True), upfirdn2d.setup_filter(taps(8), separable=True), 2, 2, [7, 6, 5, 8], np.sqrt(2), 0.2, None, False, True),
        (upfirdn2d.setup_filter([1, 3, 3, 1]), None, 2, 1, 1, 1.3, 0.1, 0.5, True, True),
        (None, upfirdn2d.setup_filter(taps(3, 2)), 1, 2, [2, 1, 1, -1], 1.0, 0.3, 1.5, False, False),
        (upfirdn2d.setup_filter(taps(6), separable=True), upfirdn2d.setup_filter(taps(4, 4)), 4, 2, [4, 5, 3, 6], np.sqrt(2), 0.2, 2.0, True, True),
    ]
    for i, (fu, fd, up, down, padding, gain, slope, clamp, flip_filter, bias) in enumerate(cases):
        fu = fu.to(device) if fu is not None else None
        fd = fd.to(device) if fd is not None else None
        kwargs = dict(fu=fu, fd=fd, up=up, down=down, padding=padding, gain=gain, slope=slope, clamp=clamp, flip_filter=flip_filter)
        x = torch.randn([2, 3, 5, 6], generator=gen, dtype=torch.float64)
        b = torch.randn([3], generator=gen, dtype=torch.float64)
        if bias:
            fn, ref, inputs = (lambda x, b: _filtered_lrelu_cuda(plugin, x, b=b, **kwargs)), (lambda x, b: _filtered_lrelu_ref(x, b=b, **kwargs)), [x, b]
        else:
            fn, ref, inputs = (lambda x: _filtered_lrelu_cuda(plugin, x, **kwargs)), (lambda x: _filtered_lrelu_ref(x, **kwargs)), [x]
        mismatch = cuda_kernels.check_against_reference(fn, ref, inputs, device, f'case {i}: up={up} down={down} padding={padding} clamp={clamp}')
        if mismatch is not None:
            return mismatch
    return None

#----------------------------------------------------------------------------

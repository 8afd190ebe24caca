// Upsample, FIR-filter, downsample (torch_utils/ops/upfirdn2d.py) as a direct-loop CUDA kernel, shared by
// the upfirdn2d and filtered_lrelu extensions.

#pragma once
#include <ATen/ATen.h>

//------------------------------------------------------------------------
// Optional leaky ReLU applied to each filtered output before it is stored (filtered_lrelu):
// v = clamp(lrelu(v, slope) * gain, -clamp, clamp), with states[i] = 1 where v > 0 before the
// activation, 0 where not, and 2 where the clamp was active (the gradient factors gain, gain * slope, 0).

struct LReluEpilogue
{
    bool    enabled = false;
    double  gain    = 1;
    double  slope   = 0;
    double  clamp   = -1;   // < 0: no clamping.
};

//------------------------------------------------------------------------
// y = downsample(filter(pad(upsample(x + b)))) for x [N, C, H, W] (b: [C] or empty = no bias) with a
// float32 filter f, 2D [fh, fw] in one pass or 1D (separable) as a horizontal and a vertical pass.
// Filter taps are scaled by gain (2D) or sqrt(gain) per pass (1D), as in the reference. flip = false
// convolves, true correlates. With epi.enabled, states receives a uint8 tensor shaped like y.

at::Tensor upfirdn2d_cuda(const at::Tensor& x, const at::Tensor& f, const at::Tensor& b,
    int upx, int upy, int downx, int downy, int padx0, int padx1, int pady0, int pady1, bool flip, double gain,
    const LReluEpilogue& epi, at::Tensor* states);

// The plain op that upfirdn2d.py calls: no bias, no activation.
inline at::Tensor upfirdn2d_op(const at::Tensor& x, const at::Tensor& f,
    int upx, int upy, int downx, int downy, int padx0, int padx1, int pady0, int pady1, bool flip, double gain)
{
    return upfirdn2d_cuda(x, f, at::Tensor(), upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip, gain, LReluEpilogue(), nullptr);
}

//------------------------------------------------------------------------

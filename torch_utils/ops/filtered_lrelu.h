// Filtered leaky ReLU (torch_utils/ops/filtered_lrelu.py): the upsampling half with bias and activation,
// and the activation's gradient mask. The downsampling half runs on upfirdn2d_cuda (upfirdn2d.h).

#pragma once
#include <ATen/ATen.h>
#include <tuple>

//------------------------------------------------------------------------
// (t, states): t = clamp(lrelu(upfirdn2d(x + b, fu, up, padding, gain=up**2), slope) * gain) and the
// per-pixel states of LReluEpilogue (uint8, shaped like t). b: [C] or empty; clamp < 0: no clamping.

std::tuple<at::Tensor, at::Tensor> filtered_lrelu_up_cuda(const at::Tensor& x, const at::Tensor& fu, const at::Tensor& b,
    int up, int padx0, int padx1, int pady0, int pady1, double gain, double slope, double clamp, bool flip);

// g times the activation's derivative recorded in states: gain (state 1), gain * slope (0), 0 (2).
at::Tensor lrelu_mask_cuda(const at::Tensor& g, const at::Tensor& states, double gain, double slope);

//------------------------------------------------------------------------

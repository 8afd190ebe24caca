// Fused bias + activation + gain + clamp for torch_utils/ops/bias_act.py, with its first and second derivatives.

#pragma once
#include <ATen/ATen.h>

//------------------------------------------------------------------------
// With s = x + b (b broadcast along dimension dim, or no bias when b is empty) and
// g(s) = clamp(act(s) * gain, -clamp, clamp) (no clamping when clamp < 0):
//   mode 0: g(s)            (dy unused)
//   mode 1: dy * g'(s)      (the input gradient; zero where the clamp is active)
//   mode 2: dy * g''(s)     (the second derivative, used by double backward)
// act is the cuda_idx of activation_funcs in bias_act.py. The result has the layout of x.

at::Tensor bias_act_cuda(const at::Tensor& x, const at::Tensor& b, const at::Tensor& dy, int mode, int act, double alpha, double gain, double clamp, int dim);

//------------------------------------------------------------------------

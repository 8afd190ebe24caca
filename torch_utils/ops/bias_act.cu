// Fused bias + activation + gain + clamp: one thread per element, evaluated in the accumulation type
// (float for half/bfloat16/float, double for double). Formulas and branch points follow the PyTorch
// functions used by the reference in bias_act.py, so both sides take the same branch at s == 0.

#include <ATen/ATen.h>
#include <ATen/AccumulateType.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <algorithm>
#include "bias_act.h"

//------------------------------------------------------------------------
// Math in float or double, picked by overload rather than relying on the CUDA C++ overload set.

__device__ inline float  dev_exp(float v)    { return expf(v); }
__device__ inline double dev_exp(double v)   { return exp(v); }
__device__ inline float  dev_expm1(float v)  { return expm1f(v); }
__device__ inline double dev_expm1(double v) { return expm1(v); }
__device__ inline float  dev_log1p(float v)  { return log1pf(v); }
__device__ inline double dev_log1p(double v) { return log1p(v); }
__device__ inline float  dev_tanh(float v)   { return tanhf(v); }
__device__ inline double dev_tanh(double v)  { return tanh(v); }

//------------------------------------------------------------------------
// The order-th derivative (0, 1 or 2) of activation act at s. Ids match cuda_idx in bias_act.py.

enum { ACT_LINEAR = 1, ACT_RELU, ACT_LRELU, ACT_TANH, ACT_SIGMOID, ACT_ELU, ACT_SELU, ACT_SOFTPLUS, ACT_SWISH };

template <typename T> __device__ T activation(int act, int order, T s, T alpha)
{
    const T one = 1, zero = 0;
    const T selu_alpha = 1.6732632423543772848170429916717;
    const T selu_scale = 1.0507009873554804934193349852946;
    const T softplus_threshold = 20; // torch.nn.functional.softplus: linear above this.
    switch (act)
    {
        case ACT_LINEAR:
            return (order == 0) ? s : (order == 1) ? one : zero;
        case ACT_RELU:
            return (order == 0) ? (s > zero ? s : zero) : (order == 1) ? (s > zero ? one : zero) : zero;
        case ACT_LRELU:
            return (order == 0) ? (s > zero ? s : s * alpha) : (order == 1) ? (s > zero ? one : alpha) : zero;
        case ACT_TANH:
        {
            T t = dev_tanh(s);
            return (order == 0) ? t : (order == 1) ? one - t * t : -2 * t * (one - t * t);
        }
        case ACT_SIGMOID:
        {
            T g = one / (one + dev_exp(-s));
            return (order == 0) ? g : (order == 1) ? g * (one - g) : g * (one - g) * (one - 2 * g);
        }
        case ACT_ELU:
            if (s > zero)
                return (order == 0) ? s : (order == 1) ? one : zero;
            return (order == 0) ? dev_expm1(s) : dev_exp(s);
        case ACT_SELU:
            if (s > zero)
                return (order == 0) ? selu_scale * s : (order == 1) ? selu_scale : zero;
            return (order == 0) ? selu_scale * selu_alpha * dev_expm1(s) : selu_scale * selu_alpha * dev_exp(s);
        case ACT_SOFTPLUS:
        {
            T g = one / (one + dev_exp(-s));
            if (order == 0)
                return (s > softplus_threshold) ? s : dev_log1p(dev_exp(s));
            if (order == 1)
                return (s > softplus_threshold) ? one : g;
            return (s < softplus_threshold) ? g * (one - g) : zero;
        }
        case ACT_SWISH:
        {
            T g = one / (one + dev_exp(-s));
            return (order == 0) ? s * g : (order == 1) ? g * (one + s * (one - g)) : g * (one - g) * (2 + s * (one - 2 * g));
        }
    }
    return zero;
}

//------------------------------------------------------------------------
// Elements are visited in memory order, which works for any dense layout (contiguous, channels_last, ...):
// the index along dim of the element at offset i is (i / stride[dim]) % size[dim].

template <typename scalar_t>
__global__ void bias_act_kernel(const scalar_t* __restrict__ x, const scalar_t* __restrict__ b, const scalar_t* __restrict__ dy, scalar_t* __restrict__ out,
    int64_t numel, int64_t b_stride, int64_t b_size, int mode, int act,
    at::acc_type<scalar_t, true> alpha, at::acc_type<scalar_t, true> gain, at::acc_type<scalar_t, true> clamp)
{
    typedef at::acc_type<scalar_t, true> acc_t;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < numel; i += (int64_t)blockDim.x * gridDim.x)
    {
        acc_t s = static_cast<acc_t>(x[i]);
        if (b)
            s += static_cast<acc_t>(b[(i / b_stride) % b_size]);

        if (mode == 0)
        {
            acc_t v = activation<acc_t>(act, 0, s, alpha) * gain;
            if (clamp >= 0) // Written so that NaN passes through, as with torch.clamp.
                v = (v < -clamp) ? -clamp : (v > clamp) ? clamp : v;
            out[i] = static_cast<scalar_t>(v);
            continue;
        }

        acc_t d = activation<acc_t>(act, mode, s, alpha) * gain;
        if (clamp >= 0)
        {
            acc_t v = activation<acc_t>(act, 0, s, alpha) * gain;
            if (v < -clamp || v > clamp) // torch.clamp passes the gradient on the bounds themselves.
                d = 0;
        }
        out[i] = static_cast<scalar_t>(static_cast<acc_t>(dy[i]) * d);
    }
}

//------------------------------------------------------------------------

at::Tensor bias_act_cuda(const at::Tensor& x_in, const at::Tensor& b_in, const at::Tensor& dy_in, int mode, int act, double alpha, double gain, double clamp, int dim)
{
    TORCH_CHECK(x_in.is_cuda(), "bias_act: x must be a CUDA tensor");
    TORCH_CHECK(mode >= 0 && mode <= 2, "bias_act: mode must be 0, 1 or 2");
    TORCH_CHECK(act >= ACT_LINEAR && act <= ACT_SWISH, "bias_act: unknown activation id ", act);
    const bool has_bias = b_in.numel() > 0;
    if (has_bias)
    {
        TORCH_CHECK(dim >= 0 && dim < x_in.dim(), "bias_act: dim out of range");
        TORCH_CHECK(b_in.dim() == 1 && b_in.size(0) == x_in.size(dim), "bias_act: b must be 1D with x.shape[dim] elements");
        TORCH_CHECK(b_in.device() == x_in.device() && b_in.scalar_type() == x_in.scalar_type(), "bias_act: b must have the device and dtype of x");
    }
    if (mode != 0)
    {
        TORCH_CHECK(dy_in.sizes() == x_in.sizes(), "bias_act: dy must have the shape of x");
        TORCH_CHECK(dy_in.device() == x_in.device() && dy_in.scalar_type() == x_in.scalar_type(), "bias_act: dy must have the device and dtype of x");
    }
    const c10::cuda::OptionalCUDAGuard device_guard(x_in.device());

    // x keeps its layout if it is dense; dy and the output are given that same layout.
    at::Tensor x = x_in.is_non_overlapping_and_dense() ? x_in : x_in.contiguous();
    at::Tensor dy = dy_in;
    if (mode != 0 && dy.strides() != x.strides())
        dy = at::empty_like(x).copy_(dy_in);
    at::Tensor b = b_in.contiguous();
    at::Tensor out = at::empty_like(x);
    const int64_t numel = x.numel();
    if (numel == 0)
        return out;
    const int64_t b_stride = has_bias ? std::max<int64_t>(x.stride(dim), 1) : 1;
    const int64_t b_size = has_bias ? x.size(dim) : 1;

    const int threads = 256;
    const int blocks = (int)std::min<int64_t>((numel + threads - 1) / threads, 1 << 20);
    cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::ScalarType::Half, at::ScalarType::BFloat16, x.scalar_type(), "bias_act_cuda", [&]
    {
        typedef at::acc_type<scalar_t, true> acc_t;
        bias_act_kernel<scalar_t><<<blocks, threads, 0, stream>>>(
            x.data_ptr<scalar_t>(), has_bias ? b.data_ptr<scalar_t>() : nullptr, (mode != 0) ? dy.data_ptr<scalar_t>() : nullptr, out.data_ptr<scalar_t>(),
            numel, b_stride, b_size, mode, act, static_cast<acc_t>(alpha), static_cast<acc_t>(gain), static_cast<acc_t>(clamp));
        C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
    return out;
}

//------------------------------------------------------------------------

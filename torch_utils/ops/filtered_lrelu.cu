// Filtered leaky ReLU on the GPU: the upsampling filter, bias, leaky ReLU and clamp run fused in one
// upfirdn2d pass (its epilogue records which branch each pixel took); the backward pass multiplies
// incoming gradients by the recorded branch's slope, here.

#include <ATen/ATen.h>
#include <ATen/AccumulateType.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <algorithm>
#include "filtered_lrelu.h"
#include "upfirdn2d.h"

//------------------------------------------------------------------------

std::tuple<at::Tensor, at::Tensor> filtered_lrelu_up_cuda(const at::Tensor& x, const at::Tensor& fu, const at::Tensor& b,
    int up, int padx0, int padx1, int pady0, int pady1, double gain, double slope, double clamp, bool flip)
{
    TORCH_CHECK(up >= 1, "filtered_lrelu: up must be >= 1");
    LReluEpilogue epi;
    epi.enabled = true;
    epi.gain = gain;
    epi.slope = slope;
    epi.clamp = clamp;
    at::Tensor states;
    at::Tensor t = upfirdn2d_cuda(x, fu, b, up, up, 1, 1, padx0, padx1, pady0, pady1, flip, (double)up * up, epi, &states);
    return std::make_tuple(t, states);
}

//------------------------------------------------------------------------

template <typename scalar_t>
__global__ void lrelu_mask_kernel(const scalar_t* __restrict__ g, const uint8_t* __restrict__ states, scalar_t* __restrict__ out, int64_t numel,
    at::acc_type<scalar_t, true> gain, at::acc_type<scalar_t, true> slope)
{
    typedef at::acc_type<scalar_t, true> acc_t;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < numel; i += (int64_t)blockDim.x * gridDim.x)
    {
        const uint8_t s = states[i];
        const acc_t factor = (s == 1) ? gain : (s == 0) ? gain * slope : acc_t(0);
        out[i] = static_cast<scalar_t>(static_cast<acc_t>(g[i]) * factor);
    }
}

at::Tensor lrelu_mask_cuda(const at::Tensor& g_in, const at::Tensor& states_in, double gain, double slope)
{
    TORCH_CHECK(g_in.is_cuda() && states_in.device() == g_in.device(), "lrelu_mask: g and states must be on the same CUDA device");
    TORCH_CHECK(states_in.scalar_type() == at::kByte && states_in.sizes() == g_in.sizes(), "lrelu_mask: states must be uint8 shaped like g");
    const c10::cuda::OptionalCUDAGuard device_guard(g_in.device());
    at::Tensor g = g_in.contiguous();
    at::Tensor states = states_in.contiguous();
    at::Tensor out = at::empty_like(g);
    const int64_t numel = g.numel();
    if (numel == 0)
        return out;

    const int threads = 256;
    const int blocks = (int)std::min<int64_t>((numel + threads - 1) / threads, 1 << 20);
    cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::ScalarType::Half, at::ScalarType::BFloat16, g.scalar_type(), "lrelu_mask_cuda", [&]
    {
        typedef at::acc_type<scalar_t, true> acc_t;
        lrelu_mask_kernel<scalar_t><<<blocks, threads, 0, stream>>>(g.data_ptr<scalar_t>(), states.data_ptr<uint8_t>(), out.data_ptr<scalar_t>(), numel,
            static_cast<acc_t>(gain), static_cast<acc_t>(slope));
        C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
    return out;
}

//------------------------------------------------------------------------

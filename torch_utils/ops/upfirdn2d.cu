// Direct-loop upfirdn2d: one thread per output pixel sums the filter taps that land on real input pixels
// (not on inserted zeros or padding), accumulating in float (double for double inputs). A 1D filter runs
// as two such passes, one per axis, which is the separable fast path.

#include <ATen/ATen.h>
#include <ATen/AccumulateType.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <algorithm>
#include <climits>
#include <cmath>
#include "upfirdn2d.h"

//------------------------------------------------------------------------

struct PassParams
{
    int64_t planes;             // N * C.
    int     channels;           // C, to index the bias.
    int     in_h, in_w;
    int     out_h, out_w;
    int     upx, upy, downx, downy;
    int     padx0, pady0;
    int     fw, fh;             // Filter taps along x and y (a 1D pass has 1 along the other axis).
    bool    flip;
    bool    act;                // Leaky ReLU epilogue on?
    double  act_gain, slope, clamp;
};

//------------------------------------------------------------------------
// First tap index k >= 0 for which pos + k is a non-negative multiple of up, i.e. a real input pixel.

__device__ inline int first_tap(int pos, int up)
{
    return (pos < 0) ? -pos : (up - pos % up) % up;
}

template <typename scalar_t>
__global__ void upfirdn2d_kernel(PassParams p, const scalar_t* __restrict__ x, const scalar_t* __restrict__ b, const float* __restrict__ f,
    scalar_t* __restrict__ y, uint8_t* __restrict__ states)
{
    typedef at::acc_type<scalar_t, true> acc_t;
    const int64_t total = p.planes * p.out_h * p.out_w;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)blockDim.x * gridDim.x)
    {
        const int ox = (int)(i % p.out_w);
        const int oy = (int)((i / p.out_w) % p.out_h);
        const int64_t plane = i / ((int64_t)p.out_w * p.out_h);
        const scalar_t* xp = x + plane * p.in_h * (int64_t)p.in_w;
        const acc_t bias = b ? static_cast<acc_t>(b[plane % p.channels]) : acc_t(0);

        // Tap (ky, kx) reads position (oy * downy - pady0 + ky, ...) of the zero-inserted, unpadded input;
        // only multiples of up hold input pixels. Without flip the taps are mirrored (convolution).
        const int y0 = oy * p.downy - p.pady0;
        const int x0 = ox * p.downx - p.padx0;
        const int kx_begin = first_tap(x0, p.upx);
        acc_t acc = 0;
        for (int ky = first_tap(y0, p.upy); ky < p.fh; ky += p.upy)
        {
            const int iy = (y0 + ky) / p.upy;
            if (iy >= p.in_h)
                break;
            const float* frow = f + (p.flip ? ky : p.fh - 1 - ky) * p.fw;
            for (int kx = kx_begin; kx < p.fw; kx += p.upx)
            {
                const int ix = (x0 + kx) / p.upx;
                if (ix >= p.in_w)
                    break;
                acc += static_cast<acc_t>(frow[p.flip ? kx : p.fw - 1 - kx]) * (static_cast<acc_t>(xp[(int64_t)iy * p.in_w + ix]) + bias);
            }
        }

        if (p.act)
        {
            const acc_t gain = p.act_gain, slope = p.slope, clamp = p.clamp;
            uint8_t state = (acc > 0) ? 1 : 0;
            acc = ((acc > 0) ? acc : acc * slope) * gain;
            if (clamp >= 0 && (acc < -clamp || acc > clamp))
            {
                acc = (acc < 0) ? -clamp : clamp;
                state = 2;
            }
            if (states)
                states[i] = state;
        }
        y[i] = static_cast<scalar_t>(acc);
    }
}

//------------------------------------------------------------------------
// One pass with filter data fs (float32, contiguous, fh * fw taps, already scaled by the gain).

static at::Tensor run_pass(const at::Tensor& x, const at::Tensor& fs, int fw, int fh, const at::Tensor& b,
    int upx, int upy, int downx, int downy, int padx0, int padx1, int pady0, int pady1, bool flip,
    const LReluEpilogue& epi, at::Tensor* states)
{
    const int64_t n = x.size(0), c = x.size(1), in_h = x.size(2), in_w = x.size(3);
    const int64_t num_w = in_w * upx + padx0 + padx1 - (fw - 1);
    const int64_t num_h = in_h * upy + pady0 + pady1 - (fh - 1);
    TORCH_CHECK(num_w >= 1 && num_h >= 1, "upfirdn2d: the padding and filter leave an empty output");
    const int64_t out_w = (num_w + downx - 1) / downx;
    const int64_t out_h = (num_h + downy - 1) / downy;
    TORCH_CHECK(out_w < INT_MAX && out_h < INT_MAX && in_w * upx < INT_MAX && in_h * upy < INT_MAX, "upfirdn2d: image too large");

    at::Tensor y = at::empty({n, c, out_h, out_w}, x.options());
    uint8_t* states_ptr = nullptr;
    if (epi.enabled && states)
    {
        *states = at::empty({n, c, out_h, out_w}, x.options().dtype(at::kByte));
        states_ptr = states->data_ptr<uint8_t>();
    }
    if (y.numel() == 0)
        return y;

    PassParams p;
    p.planes = n * c; p.channels = (int)c;
    p.in_h = (int)in_h; p.in_w = (int)in_w; p.out_h = (int)out_h; p.out_w = (int)out_w;
    p.upx = upx; p.upy = upy; p.downx = downx; p.downy = downy; p.padx0 = padx0; p.pady0 = pady0;
    p.fw = fw; p.fh = fh; p.flip = flip;
    p.act = epi.enabled; p.act_gain = epi.gain; p.slope = epi.slope; p.clamp = epi.clamp;

    const int threads = 256;
    const int blocks = (int)std::min<int64_t>((y.numel() + threads - 1) / threads, 1 << 20);
    cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    const bool has_bias = b.defined() && b.numel() > 0;
    AT_DISPATCH_FLOATING_TYPES_AND2(at::ScalarType::Half, at::ScalarType::BFloat16, x.scalar_type(), "upfirdn2d_cuda", [&]
    {
        upfirdn2d_kernel<scalar_t><<<blocks, threads, 0, stream>>>(p, x.data_ptr<scalar_t>(), has_bias ? b.data_ptr<scalar_t>() : nullptr,
            fs.data_ptr<float>(), y.data_ptr<scalar_t>(), states_ptr);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
    return y;
}

//------------------------------------------------------------------------

at::Tensor upfirdn2d_cuda(const at::Tensor& x_in, const at::Tensor& f, const at::Tensor& b_in,
    int upx, int upy, int downx, int downy, int padx0, int padx1, int pady0, int pady1, bool flip, double gain,
    const LReluEpilogue& epi, at::Tensor* states)
{
    TORCH_CHECK(x_in.is_cuda() && x_in.dim() == 4, "upfirdn2d: x must be a 4D CUDA tensor");
    TORCH_CHECK(f.device() == x_in.device() && f.scalar_type() == at::kFloat, "upfirdn2d: f must be float32 on the device of x");
    TORCH_CHECK((f.dim() == 1 || f.dim() == 2) && f.numel() > 0, "upfirdn2d: f must be a non-empty 1D or 2D filter");
    TORCH_CHECK(upx >= 1 && upy >= 1 && downx >= 1 && downy >= 1, "upfirdn2d: up and down must be >= 1");
    const bool has_bias = b_in.defined() && b_in.numel() > 0;
    if (has_bias)
    {
        TORCH_CHECK(b_in.dim() == 1 && b_in.size(0) == x_in.size(1), "upfirdn2d: b must be 1D with one entry per channel");
        TORCH_CHECK(b_in.device() == x_in.device() && b_in.scalar_type() == x_in.scalar_type(), "upfirdn2d: b must have the device and dtype of x");
    }
    const c10::cuda::OptionalCUDAGuard device_guard(x_in.device());
    at::Tensor x = x_in.contiguous();
    at::Tensor b = has_bias ? b_in.contiguous() : at::Tensor();

    // The reference scales the taps by gain ** (f.ndim / 2) in float32: a 1D filter is applied twice.
    at::Tensor fs = (f * std::pow(gain, f.dim() / 2.0)).contiguous();
    if (f.dim() == 2)
        return run_pass(x, fs, (int)f.size(1), (int)f.size(0), b, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip, epi, states);

    // Separable: horizontal pass (with the bias), then vertical pass (with the epilogue).
    const int taps = (int)f.size(0);
    at::Tensor t = run_pass(x, fs, taps, 1, b, upx, 1, downx, 1, padx0, padx1, 0, 0, flip, LReluEpilogue(), nullptr);
    return run_pass(t, fs, 1, taps, at::Tensor(), 1, upy, 1, downy, 0, 0, pady0, pady1, flip, epi, states);
}

//------------------------------------------------------------------------

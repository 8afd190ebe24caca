// Python binding of the filtered_lrelu kernels (filtered_lrelu.cu, upfirdn2d.cu).

#include <torch/extension.h>
#include "filtered_lrelu.h"
#include "upfirdn2d.h"

//------------------------------------------------------------------------

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m)
{
    m.def("filtered_lrelu_up", &filtered_lrelu_up_cuda, "filtered_lrelu_up(x, fu, b, up, padx0, padx1, pady0, pady1, gain, slope, clamp, flip) -> (t, states)");
    m.def("lrelu_mask", &lrelu_mask_cuda, "lrelu_mask(g, states, gain, slope)");
    m.def("upfirdn2d", &upfirdn2d_op, "upfirdn2d(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip, gain)");
}

//------------------------------------------------------------------------

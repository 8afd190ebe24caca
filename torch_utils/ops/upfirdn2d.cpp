// Python binding of the upfirdn2d kernel (upfirdn2d.cu).

#include <torch/extension.h>
#include "upfirdn2d.h"

//------------------------------------------------------------------------

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m)
{
    m.def("upfirdn2d", &upfirdn2d_op, "upfirdn2d(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip, gain)");
}

//------------------------------------------------------------------------

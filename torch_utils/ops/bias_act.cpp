// Python binding of the bias_act kernel (bias_act.cu).

#include <torch/extension.h>
#include "bias_act.h"

//------------------------------------------------------------------------

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m)
{
    m.def("bias_act", &bias_act_cuda, "bias_act(x, b, dy, mode, act, alpha, gain, clamp, dim): mode 0 = value, 1 = dy * derivative, 2 = dy * second derivative");
}

//------------------------------------------------------------------------

"""Compile and import every CUDA extension of torch_utils.ops and print one line per op; exit 1 if any failed.

Needs a CUDA build of PyTorch, nvcc and ninja, but no GPU (nothing is run). Start it through
tools/check_cuda_build.sh, which picks the interpreter, the GPU architectures (TORCH_CUDA_ARCH_LIST), the
toolkit (CUDA_HOME) and MAX_JOBS. Builds go to a fresh temporary cache, so every run really compiles."""

import argparse
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#----------------------------------------------------------------------------

# Functions each extension must export: what bias_act.py, upfirdn2d.py and filtered_lrelu.py call.
EXPORTS = {
    'bias_act':         ['bias_act'],
    'upfirdn2d':        ['upfirdn2d'],
    'filtered_lrelu':   ['filtered_lrelu_up', 'lrelu_mask', 'upfirdn2d'],
}

#----------------------------------------------------------------------------

def _first_error(e: RuntimeError) -> str:
    """The first compiler error line of a failed build (get_plugin's one-line reason is cut short), else the reason."""
    log = str(e.__cause__ if e.__cause__ is not None else e)
    errors = [line.strip() for line in log.splitlines() if re.search(r'\berror\b', line, re.IGNORECASE) and not line.startswith('[')]
    return errors[0] if errors else str(e)

#----------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--verbose', action='store_true', help="show the compiler's output")
    args = parser.parse_args()

    import torch
    import torch.utils.cpp_extension
    if torch.version.cuda is None:
        print(f'check_cuda_build: {sys.executable} has a CPU-only torch {torch.__version__}; pass the python of a CUDA build, e.g. tools/check_cuda_build.sh /tmp/cudavenv/bin/python')
        return 2
    from torch_utils import custom_ops
    from torch_utils.ops import cuda_kernels
    assert set(EXPORTS) == set(cuda_kernels.SOURCES)
    custom_ops.verbosity = 'full' if args.verbose else 'none'
    print(f'torch {torch.__version__} (CUDA {torch.version.cuda}), toolkit {torch.utils.cpp_extension.CUDA_HOME}, TORCH_CUDA_ARCH_LIST={os.environ.get("TORCH_CUDA_ARCH_LIST", "<unset: the local GPU>")}, MAX_JOBS={os.environ.get("MAX_JOBS", "<unset>")}')

    failed = []
    with tempfile.TemporaryDirectory(prefix='check_cuda_build-') as cache_dir:
        os.environ['DNNLIB_CACHE_DIR'] = cache_dir
        for op in cuda_kernels.SOURCES:
            start = time.time()
            try:
                plugin = cuda_kernels.build(op)
                missing = [name for name in EXPORTS[op] if not callable(getattr(plugin, name, None))]
                if missing:
                    raise RuntimeError(f'the extension does not export {", ".join(missing)}')
                print(f'{op:<16s} OK      compiled and imported in {time.time() - start:.0f} s', flush=True)
            except RuntimeError as e:
                failed.append(op)
                hint = '' if args.verbose else ' (rerun with --verbose for the compiler output)'
                print(f'{op:<16s} FAILED  {_first_error(e)}{hint}', flush=True)
    return 1 if failed else 0

#----------------------------------------------------------------------------

if __name__ == '__main__':
    sys.exit(main())

#----------------------------------------------------------------------------

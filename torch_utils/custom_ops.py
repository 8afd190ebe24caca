"""Build-and-load of the C++/CUDA extensions behind torch_utils.ops, compiled with ninja on first use.

Builds are cached under dnnlib.make_cache_dir_path('torch_extensions', ...) in a directory keyed by a hash of
the source files, the PyTorch/CUDA versions and the GPU, so an edited kernel or a different machine never
picks up a stale binary, and unchanged sources load instantly. Callers catch the RuntimeError raised on a
failed build and fall back to their PyTorch reference implementation."""

import hashlib
import importlib
import os
import re
import shutil
import uuid
from typing import Any, List, Optional

import torch
import torch.utils.cpp_extension

import dnnlib

#----------------------------------------------------------------------------

verbosity = 'brief' # 'none': silent, 'brief': one line per plugin, 'full': the compiler's output too.

_cached_plugins = dict() # module_name -> loaded extension module.

#----------------------------------------------------------------------------

def _build_key(files: List[str]) -> str:
    # Anything that changes the binary goes into the key: source contents and names, toolchain, target GPU.
    md5 = hashlib.md5()
    for fname in files:
        md5.update(os.path.basename(fname).encode('utf-8'))
        with open(fname, 'rb') as f:
            md5.update(f.read())
    md5.update(f'torch={torch.__version__} cuda={torch.version.cuda}'.encode('utf-8'))
    if torch.cuda.is_available():
        md5.update(torch.cuda.get_device_name().encode('utf-8'))
    return md5.hexdigest()

#----------------------------------------------------------------------------

def get_plugin(module_name: str, sources: List[str], headers: Optional[List[str]] = None, source_dir: Optional[str] = None, **build_kwargs: Any) -> Any:
    """Compile (once per source hash) and import the extension `module_name` from the given .cpp/.cu sources.

    headers are not compiled but are part of the hash and are copied next to the sources, so that
    `#include "x.h"` works in the build directory. Relative file names are taken relative to source_dir.
    build_kwargs go to torch.utils.cpp_extension.load (e.g. extra_cuda_cflags). Raises RuntimeError
    with a one-line reason if the build or import fails."""
    if verbosity not in ('none', 'brief', 'full'):
        raise ValueError(f'custom_ops.verbosity must be "none", "brief" or "full", got "{verbosity}"')
    if module_name in _cached_plugins:
        return _cached_plugins[module_name]
    headers = list(headers or [])
    sources = list(sources)
    if source_dir is not None:
        sources = [os.path.join(source_dir, fname) for fname in sources]
        headers = [os.path.join(source_dir, fname) for fname in headers]
    all_files = sorted(sources + headers)
    if len(set(os.path.basename(f) for f in all_files)) != len(all_files):
        raise ValueError(f'get_plugin({module_name}): source and header file names must be unique, got {all_files}')

    if verbosity == 'full':
        print(f'Setting up PyTorch plugin "{module_name}"...')
    elif verbosity == 'brief':
        print(f'Setting up PyTorch plugin "{module_name}"... ', end='', flush=True)

    build_dir = None
    try:
        torch.utils.cpp_extension.verify_ninja_availability()
        build_dir = dnnlib.make_cache_dir_path('torch_extensions', f'{module_name}-{_build_key(all_files)}')

        # Copy the sources into the keyed directory via a private temp dir and an atomic rename, so that
        # concurrent processes (one per GPU) never see a half-copied directory.
        if not os.path.isdir(build_dir):
            tmp_dir = f'{build_dir}.tmp-{uuid.uuid4().hex}'
            os.makedirs(tmp_dir)
            for fname in all_files:
                shutil.copyfile(fname, os.path.join(tmp_dir, os.path.basename(fname)))
            try:
                os.replace(tmp_dir, build_dir)
            except OSError: # Another process won the race; its copy is identical.
                shutil.rmtree(tmp_dir, ignore_errors=True)

        build_sources = [os.path.join(build_dir, os.path.basename(fname)) for fname in sources]
        module = torch.utils.cpp_extension.load(name=module_name, sources=build_sources, build_directory=build_dir, verbose=(verbosity == 'full'), **build_kwargs)
        module = importlib.import_module(module_name) if module is None else module
    except Exception as e:
        if verbosity == 'brief':
            print('Failed!')
        reason = re.sub(r'\s+', ' ', str(e)).strip()[:300]
        where = f' in {build_dir}' if build_dir is not None else ''
        raise RuntimeError(f'Cannot build PyTorch plugin "{module_name}"{where}: {reason}') from e

    if verbosity == 'full':
        print(f'Done setting up PyTorch plugin "{module_name}".')
    elif verbosity == 'brief':
        print('Done.')
    _cached_plugins[module_name] = module
    return module

#----------------------------------------------------------------------------

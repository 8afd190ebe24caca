"""Network loading shared by generate.py, calc_metrics.py and train.py --resume.

Reads our training snapshots and the official StyleGAN2-ADA / StyleGAN3 / Diffusion-GAN pickles: a pickled
dict {G, D, G_ema, augment_pipe, training_set_kwargs, ...} whose networks are persistent objects carrying their
module source, rebuilt here by torch_utils.persistence. Snapshots of the official Diffusion-GAN training loops
also hold the fork's diffusion object ('diffusion', or 'augment_pipe' in diffusion-insgen), made of classes this
codebase does not have: it is converted to our training.diffusion.Diffusion (same settings, p, T and timestep
pool); anything else whose code is missing outside G and G_ema is loaded as an inert SkippedObject (a D: None) with
one warning, and inside them is an error naming the missing class. The official Diffusion-ProjectedGAN pickles
name the plain classes of their FastGAN generator by module (pg_modules.*): those map to training.networks_fastgan;
their D, built on timm, is dropped. Pickles of the TensorFlow releases (they reference
dnnlib.tflib) are recognized and refused with a clear message; converting them is not supported.
Every problem with the file itself is reported as one dnnlib.UserError line naming the file.

Unpickling runs code stored in the pickle: load pickles only from sources you trust. open_network(safe=True)
reads the weights-only .safetensors + .json pair written next to our snapshots instead (training/snapshot.py)."""

import copy
import io
import pickle
import sys
from typing import Any, BinaryIO, Optional

import numpy as np
import torch

import dnnlib
from torch_utils import misc
from torch_utils import persistence
from training import diffusion as diffusion_module
from training import snapshot

#----------------------------------------------------------------------------

# Plain (not persistent) classes that official Diffusion-GAN snapshots reference by module name, inside the
# diffusion object they store, mapped to this codebase's equivalents.
FORK_EQUIVALENTS = {
    'training.diffusion.Identity':  'torch.nn.Identity',                # diffusion-stylegan2: no augmentation
    'training.augment.Identity':    'torch.nn.Identity',                # diffusion-insgen: no augmentation
    'training.diffaug.DiffAugment': 'training.diffaug.DiffAugmentPipe', # --aug=diff (same attribute 'policy')
}

# Modules of the official Diffusion-ProjectedGAN release whose plain (not persistent) classes its pickles name: the
# FastGAN generator and its blocks have the same names and attributes here.
FORK_MODULES = {
    'pg_modules.networks_fastgan':  'training.networks_fastgan',
    'pg_modules.blocks':            'training.networks_fastgan',
}

class SkippedObject:
    """Stands in for an object of a pickle whose code this codebase lacks (a class or module of another fork):
    it keeps what was pickled for it and does nothing. load_network_pkl() refuses networks that
    contain one and warns once about the other entries."""
    source          = '?'   # 'module.Class' that could not be loaded
    reason          = '?'   # why, in one line
    pickled_args    = ()    # constructor arguments found in the pickle
    pickled_state   = None  # state found in the pickle

    def __new__(cls, *args, **kwargs):
        obj = super().__new__(cls)
        obj.pickled_args = args
        return obj

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state: Any) -> None:
        self.pickled_state = state

    def __call__(self, *args, **kwargs):
        raise dnnlib.UserError(f'{self.source} was skipped when its pickle was loaded ({self.reason}) and cannot be used')

    def __repr__(self) -> str:
        return f'SkippedObject({self.source})'

def _skipped_class(source: str, reason: str) -> type:
    return type(source.rsplit('.', 1)[-1], (SkippedObject,), dict(source=source, reason=reason))

#----------------------------------------------------------------------------

class _NetworkUnpickler(pickle.Unpickler):
    """Unpickler that refuses TensorFlow-era pickles up front, loads tensors saved on a GPU onto the CPU when
    there is none (plain pickling of a tensor embeds a torch.save blob with its device), maps the helper classes
    of the Diffusion-GAN forks to ours, converts their diffusion objects to training.diffusion.Diffusion, and
    stands a SkippedObject in for whatever else it cannot find the code of."""
    def __init__(self, f: BinaryIO, name: str):
        super().__init__(f)
        self.name = name

    def find_class(self, module: str, name: str) -> Any:
        if module == 'dnnlib.tflib' or module.startswith('dnnlib.tflib.'):
            raise dnnlib.UserError(f'{self.name}: TensorFlow StyleGAN/StyleGAN2 pickles are not supported; use a PyTorch pickle (StyleGAN2-ADA-PyTorch, StyleGAN3 or Diffusion-GAN)')
        if module == 'torch.storage' and name == '_load_from_bytes':
            return _load_storage_from_bytes
        if module == 'torch_utils.persistence' and name == '_reconstruct_persistent_obj':
            return _reconstruct_persistent_obj
        equivalent = FORK_EQUIVALENTS.get(f'{module}.{name}')
        if equivalent is not None:
            return dnnlib.util.get_obj_by_name(equivalent)
        module = FORK_MODULES.get(module, module)
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError) as e:
            missing = f'no module named {e.name}' if isinstance(e, ModuleNotFoundError) else f'the module has no {name}'
            return _skipped_class(f'{module}.{name}', f'class {name} of module {module} is not in this codebase ({missing})')

def _reconstruct_persistent_obj(meta: dict) -> Any:
    """persistence._reconstruct_persistent_obj, except for the diffusion objects of the forks (converted to ours)
    and persistent classes whose embedded source fails to import (skipped)."""
    state = meta.get('state')
    if isinstance(state, dict) and 't_epl' in state and 'p' in state:
        persistence.check_meta(meta)
        return _convert_fork_diffusion(meta['class_name'], state)
    try:
        return persistence._reconstruct_persistent_obj(meta)
    except ImportError as e:
        return _skipped_class(meta['class_name'], f'the source code embedded in the pickle for class {meta["class_name"]} fails to import ({e})')()

def _convert_fork_diffusion(class_name: str, state: dict) -> Any:
    """A diffusion object of the official Diffusion-GAN forks (diffusion-stylegan2's Diffusion, diffusion-insgen's
    AugmentPipe, diffusion-projected-gan's Diffusion; recognised by their timestep pool t_epl) as our Diffusion
    with the same settings, p, T and pool. Settings we do not have make it a SkippedObject."""
    modules = state.get('_modules') or {}
    kwargs = dict(
        beta_schedule   = state.get('beta_schedule', state.get('base_schedule', 'linear')),
        beta_start      = float(state['beta_start']),
        beta_end        = float(state['beta_end']),
        t_min           = int(state['t_min']),
        t_max           = int(state['t_max']),
        noise_sd        = float(state['noise_std']),
        ts_dist         = state.get('ts_dist', 'priority'),
        aug             = str(state.get('aug_type', 'no')).lower(),
        ada_maxp        = state.get('ada_maxp'),
    )
    if kwargs['aug'] == 'diff':
        kwargs['diffaug_policy'] = getattr(modules.get('aug'), 'policy', 'color,translation,cutout')
    try:
        diffusion = diffusion_module.Diffusion(**kwargs)
        diffusion.set_state(dict(p=float(state['p']), T=int(state['num_timesteps']), t_pool=np.asarray(state['t_epl'])))
    except (KeyError, TypeError, ValueError, dnnlib.UserError) as e:
        return _skipped_class(class_name, f'a diffusion of the official release with settings this codebase lacks ({e})')()
    return diffusion.eval().requires_grad_(False)

def _find_skipped(obj: Any, found: list, seen: set) -> list:
    """Every SkippedObject reachable from obj through containers and object attributes."""
    if id(obj) in seen or isinstance(obj, (torch.Tensor, np.ndarray, str, bytes, int, float)):
        return found
    seen.add(id(obj))
    if isinstance(obj, SkippedObject):
        found.append(obj)
    elif isinstance(obj, dict):
        for value in obj.values():
            _find_skipped(value, found, seen)
    elif isinstance(obj, (list, tuple, set)):
        for value in obj:
            _find_skipped(value, found, seen)
    elif hasattr(obj, '__dict__') and not isinstance(obj, type):
        _find_skipped(vars(obj), found, seen)
    return found

def _load_storage_from_bytes(data: bytes) -> Any:
    map_location = None if torch.cuda.is_available() else 'cpu'
    return torch.load(io.BytesIO(data), map_location=map_location, weights_only=False)

#----------------------------------------------------------------------------

def load_network_pkl(f: BinaryIO, force_fp16: bool = False, name: Optional[str] = None) -> dict:
    """Read a network pickle from a binary file object.

    Returns its dict with at least the keys G, D, G_ema, augment_pipe, training_set_kwargs (missing optional
    entries are None; G_ema is required). force_fp16 rebuilds the networks with float16 in the 4 highest
    resolutions and conv_clamp 256, as in training (it only speeds up CUDA; CPU still runs float32).
    name (default: f.name) is the file name used in error messages."""
    name = name or getattr(f, 'name', None) or 'network pickle'
    if not f.seekable():
        f = io.BytesIO(f.read())

    # Every pickle a network snapshot is written with (protocol 2 or later) starts with the PROTO opcode.
    head = f.read(2)
    f.seek(-len(head), io.SEEK_CUR)
    if head[:1] != b'\x80':
        kind = 'an empty file' if not head else 'a zip archive (torch.save or dataset?)' if head == b'PK' else 'not a pickle'
        raise dnnlib.UserError(f'{name}: expected a network pickle, but the file is {kind}')

    try:
        data = _NetworkUnpickler(f, name).load()
    except dnnlib.UserError as e:
        message = str(e)
        raise dnnlib.UserError(message if message.startswith(name) else f'{name}: {message}') from e
    except (EOFError, pickle.UnpicklingError) as e:
        raise dnnlib.UserError(f'{name}: truncated or corrupt pickle ({type(e).__name__}: {e})') from e
    except Exception as e: # e.g. cut inside a tensor's bytes, or embedded source that raises: still one line
        raise dnnlib.UserError(f'{name}: truncated or corrupt pickle ({type(e).__name__}: {e})') from e

    # Validate contents: generation needs G_ema; the rest is optional (exported or stripped-down pickles).
    if not isinstance(data, dict):
        raise dnnlib.UserError(f'{name}: expected a pickled dict of networks (G, D, G_ema, ...), got {type(data).__name__}')
    if 'G_ema' not in data:
        raise dnnlib.UserError(f'{name}: no G_ema network in the pickle (keys: {", ".join(map(str, data.keys())) or "none"})')
    for key in ['G', 'D', 'augment_pipe', 'training_set_kwargs']:
        data.setdefault(key, None)

    # Code we lack: fatal inside a generator; a discriminator built on a library we do not use (timm in the
    # ProjectedGAN release) is dropped; elsewhere a warning (other forks' extras that generation does not need).
    skipped = {key: _find_skipped(value, [], set()) for key, value in data.items()}
    for key in ['G_ema', 'G']:
        if skipped[key]:
            raise dnnlib.UserError(f'{name}: {key} cannot be loaded: {skipped[key][0].reason}')
    if skipped['D']:
        data['D'] = None
    skipped = [f'{key} ({", ".join(sorted({obj.source for obj in objs}))})' for key, objs in skipped.items() if objs]
    if skipped:
        print(f'Warning: {name}: skipped {"; ".join(skipped)}: their code is not in this codebase, and generation and metrics do not need them', file=sys.stderr)
    for key in ['G', 'D', 'G_ema']:
        if data[key] is not None and not isinstance(data[key], torch.nn.Module):
            raise dnnlib.UserError(f'{name}: {key} is a {type(data[key]).__name__}, expected a torch.nn.Module')
    if data['G_ema'] is None:
        raise dnnlib.UserError(f'{name}: G_ema is None')

    return _force_fp16(data) if force_fp16 else data

#----------------------------------------------------------------------------

def _force_fp16(data: dict) -> dict:
    """Rebuild the networks with mixed precision from their recorded constructor arguments. Plain (non-persistent)
    modules cannot be rebuilt with other arguments, so they keep their precision."""
    for key in ['G', 'D', 'G_ema']:
        old = data[key]
        if old is None or not persistence.is_persistent(old):
            continue
        kwargs = copy.deepcopy(old.init_kwargs)
        fp16_kwargs = kwargs.get('synthesis_kwargs', kwargs) # StyleGAN2-ADA's G nests them, ours are flat
        fp16_kwargs['num_fp16_res'] = 4
        fp16_kwargs['conv_clamp'] = 256
        if kwargs != old.init_kwargs:
            new = type(old)(*old.init_args, **kwargs).eval().requires_grad_(False)
            misc.copy_params_and_buffers(old, new, require_all=True)
            data[key] = new
    return data

#----------------------------------------------------------------------------

def open_network(network: str, force_fp16: bool = False, safe: bool = False) -> dict:
    """Load a network pickle from a local path, a file:// URL or an http(s) URL (downloads are cached).
    safe: load the .json + .safetensors pair beside it instead (network may name any of the three files)."""
    if safe:
        data = snapshot.load_safe(network)
        return _force_fp16(data) if force_fp16 else data
    try:
        f = dnnlib.util.open_url(network)
    except OSError as e:
        raise dnnlib.UserError(f'{network}: cannot open network pickle ({e.strerror or e})') from e
    with f:
        return load_network_pkl(f, force_fp16=force_fp16, name=network)

#----------------------------------------------------------------------------

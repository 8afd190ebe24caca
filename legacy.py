"""Network loading shared by generate.py, calc_metrics.py and train.py --resume.

Reads our training snapshots and the official StyleGAN2-ADA / StyleGAN3 / Diffusion-GAN pickles: a pickled
dict {G, D, G_ema, augment_pipe, training_set_kwargs, ...} whose networks are persistent objects carrying their
module source, rebuilt here by torch_utils.persistence. Pickles of the TensorFlow releases (they reference
dnnlib.tflib) are recognized and refused with a clear message; converting them is not supported.
Every problem with the file itself is reported as one dnnlib.UserError line naming the file.

Unpickling runs code stored in the pickle: load pickles only from sources you trust. open_network(safe=True)
reads the weights-only .safetensors + .json pair written next to our snapshots instead (training/snapshot.py)."""

import copy
import io
import pickle
from typing import Any, BinaryIO, Optional

import torch

import dnnlib
from torch_utils import misc
from torch_utils import persistence
from training import snapshot

#----------------------------------------------------------------------------

class _NetworkUnpickler(pickle.Unpickler):
    """Unpickler that refuses TensorFlow-era pickles up front and loads tensors saved on a GPU onto the CPU
    when there is none (plain pickling of a tensor embeds a torch.save blob with its device)."""
    def __init__(self, f: BinaryIO, name: str):
        super().__init__(f)
        self.name = name

    def find_class(self, module: str, name: str) -> Any:
        if module == 'dnnlib.tflib' or module.startswith('dnnlib.tflib.'):
            raise dnnlib.UserError(f'{self.name}: TensorFlow StyleGAN/StyleGAN2 pickles are not supported; use a PyTorch pickle (StyleGAN2-ADA-PyTorch, StyleGAN3 or Diffusion-GAN)')
        if module == 'torch.storage' and name == '_load_from_bytes':
            return _load_storage_from_bytes
        return super().find_class(module, name)

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
    except ImportError as e: # e.g. an official StyleGAN3 pickle whose source imports an op this codebase lacks
        raise dnnlib.UserError(f'{name}: the source code embedded in the pickle fails to import ({e})') from e
    except Exception as e: # e.g. cut inside a tensor's bytes, or embedded source that raises: still one line
        raise dnnlib.UserError(f'{name}: truncated or corrupt pickle ({type(e).__name__}: {e})') from e

    # Validate contents: generation needs G_ema; the rest is optional (exported or stripped-down pickles).
    if not isinstance(data, dict):
        raise dnnlib.UserError(f'{name}: expected a pickled dict of networks (G, D, G_ema, ...), got {type(data).__name__}')
    if 'G_ema' not in data:
        raise dnnlib.UserError(f'{name}: no G_ema network in the pickle (keys: {", ".join(map(str, data.keys())) or "none"})')
    for key in ['G', 'D', 'augment_pipe', 'training_set_kwargs']:
        data.setdefault(key, None)
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

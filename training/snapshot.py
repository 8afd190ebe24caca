"""Training snapshots that survive crashes and can be trusted: atomic writes, the state an exact resume needs
(RNG states, optimizer states, ...), the checks a resume pickle must pass, and the safe weights format.

Every network snapshot network-snapshot-NNNNNN.pkl is accompanied by
    network-snapshot-NNNNNN.safetensors   the state_dicts of G, D and G_ema (keys 'G.<name>', 'D.<name>', ...)
    network-snapshot-NNNNNN.json          for each network its class name and constructor kwargs, the training set
                                          kwargs, the diffusion state, and the sha256 of the .safetensors file
Loading these (load_safe) constructs our own classes, by name from SAFE_CLASSES only, and copies the tensors in:
unlike unpickling, it executes nothing stored in the files."""

import hashlib
import json
import random
import re
from typing import Any, Dict

import numpy as np
import safetensors.torch
import torch

import dnnlib
from dnnlib.util import write_atomic   # module attribute: tests stand in for it to simulate crashes and full disks
from training import presets

#----------------------------------------------------------------------------

SAFE_FORMAT = 'diffusion-gan-weights'
SAFE_VERSION = 1

# The only classes load_safe constructs: the networks named by the presets in configs/.
SAFE_CLASSES = presets.network_classes()
SAFE_DATASET_CLASSES = (
    'training.dataset.ImageFolderDataset',
    'training.dataset.DigitsDataset',
)
SAFE_NETWORK_NAME = re.compile(r'^[A-Za-z][A-Za-z0-9_]{0,31}$')    # G, D, G_ema, a family's extra networks

#----------------------------------------------------------------------------

def capture_rng_state(device: torch.device) -> dict:
    """All RNG states the training code draws from: Python, NumPy's global generator, torch (CPU and CUDA)."""
    state = dict(python=random.getstate(), numpy=np.random.get_state(), torch=torch.get_rng_state())
    if device.type == 'cuda':
        state['cuda'] = torch.cuda.get_rng_state(device)
    return state

def restore_rng_state(state: dict, device: torch.device) -> None:
    """Inverse of capture_rng_state()."""
    random.setstate(state['python'])
    np.random.set_state(state['numpy'])
    torch.set_rng_state(state['torch'])
    if device.type == 'cuda' and state.get('cuda') is not None:
        torch.cuda.set_rng_state(state['cuda'], device)

def to_cpu(obj: Any) -> Any:
    """Copy of a nest of dicts / lists / tuples with every tensor moved to the CPU (e.g. an optimizer state_dict)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, dict):
        return type(obj)((key, to_cpu(value)) for key, value in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(value) for value in obj)
    return obj

#----------------------------------------------------------------------------

def check_resume(data: dict, name: str, training_set: Any, total_kimg: float) -> None:
    """Raise UserError unless the networks of a resume pickle fit the training set, and an exact resume has
    training left to do."""
    G = data['G_ema']
    res = getattr(G, 'img_resolution', None)
    if res is not None and res != training_set.resolution:
        raise dnnlib.UserError(f'--resume={name}: the networks are for {res}x{res} images, but the training set is {training_set.resolution}x{training_set.resolution}')
    channels = getattr(G, 'img_channels', None)
    if channels is not None and channels != training_set.num_channels:
        raise dnnlib.UserError(f'--resume={name}: the networks make {channels}-channel images, but the training set has {training_set.num_channels} channels')
    c_dim = getattr(G, 'c_dim', None)
    if c_dim is not None and c_dim != training_set.label_dim:
        raise dnnlib.UserError(f'--resume={name}: the networks take {c_dim}-dimensional labels, but the training set gives {training_set.label_dim} (check --cond)')
    state = data.get('resume_state')
    if state is not None and state['cur_nimg'] >= total_kimg * 1000:
        raise dnnlib.UserError(f'--resume={name}: the snapshot is at {state["cur_nimg"] / 1000:g} kimg, already at --kimg={total_kimg:g}; raise --kimg to train further')

#----------------------------------------------------------------------------

def save_safe(base: str, networks: Dict[str, tuple], info: dict) -> None:
    """Write base.safetensors and base.json. networks: name -> (class_name, init_kwargs, module); classes outside
    SAFE_CLASSES are left out (load_safe would refuse them). info: further JSON entries (training_set_kwargs, ...)."""
    tensors = dict()
    specs = dict()
    for name, (class_name, init_kwargs, module) in networks.items():
        if module is None or class_name not in SAFE_CLASSES:
            continue
        specs[name] = dict(class_name=class_name, init_kwargs=init_kwargs)
        for key, value in module.state_dict().items():
            tensors[f'{name}.{key}'] = value.detach().cpu().clone().contiguous() # clone: safetensors refuses shared storage
    if 'G_ema' not in specs:
        return
    data = safetensors.torch.save(tensors)
    desc = dict(format=SAFE_FORMAT, version=SAFE_VERSION, sha256=hashlib.sha256(data).hexdigest(), networks=specs, **info)
    write_atomic(base + '.safetensors', data)
    write_atomic(base + '.json', json.dumps(desc, indent=2).encode('utf-8'))

#----------------------------------------------------------------------------

def _read(url: str) -> bytes:
    try:
        with dnnlib.util.open_url(url) as f:
            return f.read()
    except OSError as err:
        raise dnnlib.UserError(f'{url}: cannot read ({err.strerror or err}); --safe needs the .json and .safetensors files written next to each snapshot') from err

def load_safe(network: str) -> dict:
    """Load G, D, G_ema from the .json + .safetensors pair of a snapshot, given the path or URL of either file or of
    the .pkl beside them. Returns a dict like legacy.load_network_pkl (augment_pipe is None). Executes no code from
    the files: the classes come from SAFE_CLASSES, the weights are plain tensors."""
    base = re.sub(r'\.(pkl|json|safetensors)$', '', network)
    json_name = base + '.json'
    try:
        desc = json.loads(_read(json_name).decode('utf-8'))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise dnnlib.UserError(f'{json_name}: not a valid JSON file ({err})') from err
    if not isinstance(desc, dict) or desc.get('format') != SAFE_FORMAT or not isinstance(desc.get('networks'), dict):
        raise dnnlib.UserError(f'{json_name}: not a network description of this codebase (expected "format": "{SAFE_FORMAT}")')
    if desc.get('version') != SAFE_VERSION:
        raise dnnlib.UserError(f'{json_name}: format version {desc.get("version")}, expected {SAFE_VERSION}')
    specs = desc['networks']
    if 'G_ema' not in specs:
        raise dnnlib.UserError(f'{json_name}: no G_ema network described')

    # The weights: the file next to the description (never a path taken from it), checked against its hash.
    st_name = base + '.safetensors'
    data = _read(st_name)
    if hashlib.sha256(data).hexdigest() != desc.get('sha256'):
        raise dnnlib.UserError(f'{st_name}: sha256 does not match {json_name} (truncated, or from another snapshot)')
    try:
        tensors = safetensors.torch.load(data)
    except Exception as err: # safetensors raises its own error type for a bad header
        raise dnnlib.UserError(f'{st_name}: not a valid safetensors file ({err})') from err

    result = dnnlib.EasyDict(G=None, D=None, G_ema=None, augment_pipe=None, training_set_kwargs=None, family=desc.get('family'))
    for name, spec in specs.items():
        if not SAFE_NETWORK_NAME.match(name) or not isinstance(spec, dict):
            raise dnnlib.UserError(f'{json_name}: unexpected network entry "{name}" (expected a name such as G, D, G_ema)')
        class_name = spec.get('class_name')
        if class_name not in SAFE_CLASSES:
            raise dnnlib.UserError(f'{json_name}: {name} has class "{class_name}", which is not one of the allowed classes {", ".join(SAFE_CLASSES)}')
        init_kwargs = spec.get('init_kwargs')
        if not isinstance(init_kwargs, dict):
            raise dnnlib.UserError(f'{json_name}: {name} has no init_kwargs object')
        try:
            module = dnnlib.util.get_obj_by_name(class_name)(**init_kwargs)
        except (TypeError, ValueError, KeyError, AssertionError, dnnlib.UserError) as err:
            raise dnnlib.UserError(f'{json_name}: cannot construct {name} ({class_name}) from its init_kwargs ({type(err).__name__}: {err})') from err
        prefix = name + '.'
        state = {key[len(prefix):]: value for key, value in tensors.items() if key.startswith(prefix)}
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise dnnlib.UserError(f'{st_name}: the weights of {name} do not fit {class_name} ({" ".join(str(err).split())})') from err
        result[name] = module.eval().requires_grad_(False)

    # Only the training set kwargs of our own dataset classes: calc_metrics constructs it by name.
    kwargs = desc.get('training_set_kwargs')
    if isinstance(kwargs, dict):
        if kwargs.get('class_name') not in SAFE_DATASET_CLASSES:
            raise dnnlib.UserError(f'{json_name}: training set class "{kwargs.get("class_name")}" is not one of {", ".join(SAFE_DATASET_CLASSES)}')
        result.training_set_kwargs = dnnlib.EasyDict(kwargs)
    return result

#----------------------------------------------------------------------------

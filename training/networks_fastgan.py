"""FastGAN generator (Liu et al., "Towards Faster and Stabilized GAN Training for High-fidelity Few-shot Image
Synthesis", ICLR 2021) as trained by Projected GANs (Sauer et al., NeurIPS 2021): the ProjectedGAN family's G.

G: z [N, z_dim] (no mapping network: G.mapping only adds the styles axis, so that the StyleGAN interface holds)
-> normalized to unit second moment -> 4x4 by a transposed convolution -> up-blocks doubling the resolution up to
img_resolution (nearest upsampling, 3x3 convolutions, noise injection, batch norm, GLU; 'lite': one convolution
per block and no noise) -> skip-layer excitation (the 4, 8, 16 and 32 px features gate the 64, 128, 256 and
512 px ones channel-wise) -> 3x3 convolution to the image. Feature maps: ngf times 16, 16, 8, 4, 2, 2, 1, 1/2,
1/4, 1/8 at 2 (the input), 4, ..., 1024 px. Every convolution and linear layer is spectrally normalized.
Conditional (cond=True): class-conditional batch norm whose gain and bias come from an embedding of the class.

The module and attribute names follow the ProjectedGAN release (pg_modules.networks_fastgan, pg_modules.blocks),
whose pickles store these classes by name: legacy.py maps their module names here, and their weights copy over."""

import torch
import torch.nn.functional as F

from torch_utils import persistence

#----------------------------------------------------------------------------

RESOLUTIONS = (32, 64, 128, 256, 512, 1024)     # what FastGAN can make
CHANNEL_MULTIPLIERS = {2: 16, 4: 16, 8: 8, 16: 4, 32: 2, 64: 2, 128: 1, 256: 0.5, 512: 0.25, 1024: 0.125, 2048: 0.125}

def sn_conv2d(*args, **kwargs) -> torch.nn.Module:
    return torch.nn.utils.spectral_norm(torch.nn.Conv2d(*args, **kwargs))

def sn_conv_transpose2d(*args, **kwargs) -> torch.nn.Module:
    return torch.nn.utils.spectral_norm(torch.nn.ConvTranspose2d(*args, **kwargs))

def sn_linear(*args, **kwargs) -> torch.nn.Module:
    return torch.nn.utils.spectral_norm(torch.nn.Linear(*args, **kwargs))

def normalize_second_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()

#----------------------------------------------------------------------------

@persistence.persistent_class
class GLU(torch.nn.Module):
    """Gated linear unit over channels: the first half times the sigmoid of the second."""
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = x.shape[1] // 2
        assert x.shape[1] == 2 * half, 'GLU needs an even number of channels'
        return x[:, :half] * torch.sigmoid(x[:, half:])

@persistence.persistent_class
class Swish(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)

@persistence.persistent_class
class NoiseInjection(torch.nn.Module):
    """x + weight * N(0, 1) noise, one noise value per pixel shared by the channels (weight starts at 0)."""
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, feat: torch.Tensor, noise: torch.Tensor = None) -> torch.Tensor:
        if noise is None:
            noise = torch.randn(feat.shape[0], 1, feat.shape[2], feat.shape[3]).to(feat.device)
        return feat + self.weight * noise

@persistence.persistent_class
class InitLayer(torch.nn.Module):
    """z [N, nz] -> [N, channel, sz, sz]: a transposed convolution of the 1x1 input, batch norm, GLU."""
    def __init__(self, nz: int, channel: int, sz: int = 4):
        super().__init__()
        self.init = torch.nn.Sequential(sn_conv_transpose2d(nz, channel * 2, sz, 1, 0, bias=False), torch.nn.BatchNorm2d(channel * 2), GLU())

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        return self.init(noise.view(noise.shape[0], -1, 1, 1))

@persistence.persistent_class
class SEBlock(torch.nn.Module):
    """Skip-layer excitation: channel gates for feat_big computed from the low-resolution feat_small."""
    def __init__(self, ch_in: int, ch_out: int):
        super().__init__()
        self.main = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(4), sn_conv2d(ch_in, ch_out, 4, 1, 0, bias=False), Swish(),
                                        sn_conv2d(ch_out, ch_out, 1, 1, 0, bias=False), torch.nn.Sigmoid())

    def forward(self, feat_small: torch.Tensor, feat_big: torch.Tensor) -> torch.Tensor:
        return feat_big * self.main(feat_small)

def UpBlockSmall(in_planes: int, out_planes: int) -> torch.nn.Sequential: # pylint: disable=invalid-name (the release's name)
    """Nearest 2x upsampling, 3x3 convolution, batch norm, GLU."""
    return torch.nn.Sequential(torch.nn.Upsample(scale_factor=2, mode='nearest'), sn_conv2d(in_planes, out_planes * 2, 3, 1, 1, bias=False),
                               torch.nn.BatchNorm2d(out_planes * 2), GLU())

def UpBlockBig(in_planes: int, out_planes: int) -> torch.nn.Sequential: # pylint: disable=invalid-name
    """Nearest 2x upsampling, then twice: 3x3 convolution, noise injection, batch norm, GLU."""
    return torch.nn.Sequential(torch.nn.Upsample(scale_factor=2, mode='nearest'),
        sn_conv2d(in_planes, out_planes * 2, 3, 1, 1, bias=False), NoiseInjection(), torch.nn.BatchNorm2d(out_planes * 2), GLU(),
        sn_conv2d(out_planes, out_planes * 2, 3, 1, 1, bias=False), NoiseInjection(), torch.nn.BatchNorm2d(out_planes * 2), GLU())

#----------------------------------------------------------------------------

@persistence.persistent_class
class CCBN(torch.nn.Module):
    """Class-conditional batch norm: normalized x times (1 + gain(y)) plus bias(y), y a class embedding (FastGAN's)
    or a one-hot label (DCGAN's, spectral=False: a spectrally normalized map of a one-hot label bounds the norm of
    each class's gains by 1, too little to steer a few hundred channels)."""
    def __init__(self, output_size: int, input_size: int, eps: float = 1e-5, momentum: float = 0.1, spectral: bool = True):
        super().__init__()
        self.output_size, self.input_size = output_size, input_size
        linear = sn_linear if spectral else torch.nn.Linear
        self.gain = linear(input_size, output_size)
        self.bias = linear(input_size, output_size)
        self.eps = eps
        self.momentum = momentum
        self.register_buffer('stored_mean', torch.zeros(output_size))
        self.register_buffer('stored_var', torch.ones(output_size))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        gain = (1 + self.gain(y)).view(y.shape[0], -1, 1, 1)
        bias = self.bias(y).view(y.shape[0], -1, 1, 1)
        return F.batch_norm(x, self.stored_mean, self.stored_var, None, None, self.training, 0.1, self.eps) * gain + bias

@persistence.persistent_class
class UpBlockSmallCond(torch.nn.Module):
    def __init__(self, in_planes: int, out_planes: int, z_dim: int):
        super().__init__()
        self.in_planes, self.out_planes = in_planes, out_planes
        self.up = torch.nn.Upsample(scale_factor=2, mode='nearest')
        self.conv = sn_conv2d(in_planes, out_planes * 2, 3, 1, 1, bias=False)
        self.bn = CCBN(2 * out_planes, z_dim)
        self.act = GLU()

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(self.up(x)), c))

@persistence.persistent_class
class UpBlockBigCond(torch.nn.Module):
    def __init__(self, in_planes: int, out_planes: int, z_dim: int):
        super().__init__()
        self.in_planes, self.out_planes = in_planes, out_planes
        self.up = torch.nn.Upsample(scale_factor=2, mode='nearest')
        self.conv1 = sn_conv2d(in_planes, out_planes * 2, 3, 1, 1, bias=False)
        self.conv2 = sn_conv2d(out_planes, out_planes * 2, 3, 1, 1, bias=False)
        self.bn1 = CCBN(2 * out_planes, z_dim)
        self.bn2 = CCBN(2 * out_planes, z_dim)
        self.act = GLU()
        self.noise = NoiseInjection() # one noise weight shared by both convolutions, as in the release

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        x = self.act(self.bn1(self.noise(self.conv1(self.up(x))), c))
        return self.act(self.bn2(self.noise(self.conv2(x)), c))

#----------------------------------------------------------------------------

@persistence.persistent_class
class DummyMapping(torch.nn.Module):
    """No mapping network: z becomes the single 'style' [N, 1, z_dim]."""
    def forward(self, z: torch.Tensor, c: torch.Tensor, **kwargs) -> torch.Tensor:
        return z.unsqueeze(1)

class _SynthesisBase(torch.nn.Module):
    """The FastGAN trunk shared by the unconditional and conditional synthesis networks."""
    def _build(self, ngf: int, z_dim: int, nc: int, img_resolution: int, up_block, cond_dim=None) -> None:
        if img_resolution not in RESOLUTIONS:
            raise ValueError(f'FastGAN makes {", ".join(map(str, RESOLUTIONS))} px images, not {img_resolution}')
        self.img_resolution = img_resolution
        self.z_dim = z_dim
        nfc = {res: int(mult * ngf) for res, mult in CHANNEL_MULTIPLIERS.items()}
        extra = () if cond_dim is None else (cond_dim,)
        self.init = InitLayer(z_dim, channel=nfc[2], sz=4)
        for res in [8, 16, 32, 64, 128, 256]:
            setattr(self, f'feat_{res}', up_block(nfc[res // 2], nfc[res], *extra))
        self.se_64 = SEBlock(nfc[4], nfc[64])
        self.se_128 = SEBlock(nfc[8], nfc[128])
        self.se_256 = SEBlock(nfc[16], nfc[256])
        self.to_big = sn_conv2d(nfc[img_resolution], nc, 3, 1, 1, bias=True)
        if img_resolution > 256:
            self.feat_512 = up_block(nfc[256], nfc[512], *extra)
            self.se_512 = SEBlock(nfc[32], nfc[512])
        if img_resolution > 512:
            self.feat_1024 = up_block(nfc[512], nfc[1024], *extra)

    def _run(self, z: torch.Tensor, up) -> torch.Tensor:
        # up(name, x) runs the up-block of that name; the blocks above the output resolution are built but not run.
        feat_4 = self.init(normalize_second_moment(z))
        feat_8 = up('feat_8', feat_4)
        feat_16 = up('feat_16', feat_8)
        feat_32 = up('feat_32', feat_16)
        if self.img_resolution == 32:
            return self.to_big(feat_32)
        feat_64 = self.se_64(feat_4, up('feat_64', feat_32))
        if self.img_resolution == 64:
            return self.to_big(feat_64)
        feat = self.se_128(feat_8, up('feat_128', feat_64))
        if self.img_resolution >= 256:
            feat = self.se_256(feat_16, up('feat_256', feat))
        if self.img_resolution >= 512:
            feat = self.se_512(feat_32, up('feat_512', feat))
        if self.img_resolution >= 1024:
            feat = up('feat_1024', feat)
        return self.to_big(feat)

@persistence.persistent_class
class FastganSynthesis(_SynthesisBase):
    def __init__(self, ngf: int = 128, z_dim: int = 256, nc: int = 3, img_resolution: int = 256, lite: bool = False):
        super().__init__()
        self._build(ngf, z_dim, nc, img_resolution, UpBlockSmall if lite else UpBlockBig)

    def forward(self, input: torch.Tensor, c: torch.Tensor, **kwargs) -> torch.Tensor: # pylint: disable=redefined-builtin
        return self._run(input[:, 0], lambda name, x: getattr(self, name)(x))

@persistence.persistent_class
class FastganSynthesisCond(_SynthesisBase):
    def __init__(self, ngf: int = 64, z_dim: int = 256, nc: int = 3, img_resolution: int = 256, num_classes: int = 1000, lite: bool = False):
        super().__init__()
        self._build(ngf, z_dim, nc, img_resolution, UpBlockSmallCond if lite else UpBlockBigCond, cond_dim=z_dim)
        self.embed = torch.nn.Embedding(num_classes, z_dim)

    def forward(self, input: torch.Tensor, c: torch.Tensor, **kwargs) -> torch.Tensor: # pylint: disable=redefined-builtin
        y = self.embed(c.argmax(1))
        return self._run(input[:, 0], lambda name, x: getattr(self, name)(x, y))

#----------------------------------------------------------------------------

@persistence.persistent_class
class Generator(torch.nn.Module):
    """FastGAN G with the StyleGAN interface: G(z, c), G.mapping(z, c) -> [N, 1, z_dim], G.synthesis(ws, c)."""
    def __init__(self,
        z_dim,                      # Latent dimensionality (256 in the presets).
        c_dim,                      # Conditioning label dimensionality, 0 = no labels.
        w_dim               = 0,    # Unused (no mapping network); kept for the StyleGAN interface.
        img_resolution      = 256,  # Output resolution: 32 to 1024.
        img_channels        = 3,    # Number of output color channels.
        ngf                 = 128,  # Feature-map multiplier.
        cond                = None, # Class-conditional batch norm; None = when c_dim > 0.
        lite                = False,# The small up-blocks (fastgan_lite).
        mapping_kwargs      = {},   # Unused; kept for the StyleGAN interface.
        synthesis_kwargs    = {},   # Further FastganSynthesis(Cond) kwargs.
    ):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        cond = c_dim > 0 if cond is None else bool(cond)
        self.mapping = DummyMapping()
        kwargs = dict(ngf=ngf, z_dim=z_dim, nc=img_channels, img_resolution=img_resolution, lite=lite, **synthesis_kwargs)
        self.synthesis = FastganSynthesisCond(num_classes=max(c_dim, 1), **kwargs) if cond else FastganSynthesis(**kwargs)

    def forward(self, z: torch.Tensor, c: torch.Tensor, **kwargs) -> torch.Tensor:
        return self.synthesis(self.mapping(z, c), c)

#----------------------------------------------------------------------------

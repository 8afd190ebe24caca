"""DCGAN (Radford, Metz, Chintala, ICLR 2016) as the small baseline of the comparative studies, with a timestep-aware
discriminator for its Diffusion-GAN variant.

G: [z, one-hot c] as a 1x1 map -> 4x4 by a 4x4 transposed convolution -> transposed convolutions (4x4, stride 2)
doubling the resolution, each followed by batch norm and ReLU -> a last transposed convolution to the image, tanh.
With labels the batch norms are class-conditional (cond_norm; the projection discriminator's G, Miyato and Koyama
2018): the label in z alone is one input among z_dim + c_dim, and G learned to ignore it (real MNIST digits,
docs/studies.md).
Channels ngf x min(8, res / (2 r)) at r px: at 64 px 8, 4, 2, 1 times ngf at 4, 8, 16, 32 px (the original's).
D mirrors it: strided 4x4 convolutions halving the resolution, batch norm (not on the first) and leaky ReLU 0.2,
then a 4x4 valid convolution to one logit; no sigmoid (the losses take logits). Weights start as the paper's,
N(0, 0.02), batch-norm gains N(1, 0.02).

Timestep awareness (Diffusion-DCGAN) and labels enter D as a projection discriminator's do (Miyato and Koyama,
2018): logit += <e(t, c), sum of the 4x4 features> / sqrt(channels), e = an MLP of the sinusoidal embedding of t
(the Transformer's / DDPM's) plus a linear map of the one-hot label. Without them D is the original.

Layers come from torch.nn; a pickle of these classes rebuilds with torch and torch_utils alone."""

import numpy as np
import torch

from torch_utils import misc
from torch_utils import persistence

#----------------------------------------------------------------------------

RESOLUTIONS = (16, 32, 64, 128, 256)    # what DCGAN makes here (powers of two; 64 px is the original)

def channels_at(res: int, img_resolution: int, base: int) -> int:
    """Feature maps at res px of a DCGAN network at img_resolution: base x min(8, img_resolution / (2 res))."""
    return base * min(8, img_resolution // (2 * res))

def check_resolution(img_resolution: int) -> None:
    if img_resolution not in RESOLUTIONS:
        raise ValueError(f'DCGAN makes {", ".join(map(str, RESOLUTIONS))} px images, not {img_resolution}')

def init_dcgan_weights(module: torch.nn.Module) -> None:
    """The DCGAN paper's initialization: convolutions N(0, 0.02), batch-norm gains N(1, 0.02), biases 0 (a
    class-conditional batch norm's gains, 1 + a linear map of the label, start the same way)."""
    for m in module.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)):
            torch.nn.init.normal_(m.weight, 0, 0.02)
            if m.bias is not None:
                torch.nn.init.zeros_(m.bias)
        elif isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.normal_(m.weight, 1, 0.02)
            torch.nn.init.zeros_(m.bias)

#----------------------------------------------------------------------------

@persistence.persistent_class
class TimestepEmbedding(torch.nn.Module):
    """Sinusoidal embedding of integer timesteps (DDPM's: sin in the first half, cos in the second, frequencies
    10000^(-i / (half - 1))), then Linear -> SiLU -> Linear to out_dim. t [N] or [N, 1] -> [N, out_dim]."""
    def __init__(self,
        out_dim,                        # Output features.
        embed_dim       = 128,          # Features of the sinusoidal embedding (even).
    ):
        assert embed_dim % 2 == 0 and embed_dim >= 4
        super().__init__()
        self.embed_dim = embed_dim
        self.fc0 = torch.nn.Linear(embed_dim, out_dim)
        self.fc1 = torch.nn.Linear(out_dim, out_dim)

    @staticmethod
    def sinusoidal(t: torch.Tensor, dim: int) -> torch.Tensor:
        half = dim // 2
        freqs = torch.exp(-np.log(10000) * torch.arange(half, dtype=torch.float32, device=t.device) / (half - 1))
        args = t.reshape(-1, 1).to(torch.float32) * freqs[None]
        return torch.cat([args.sin(), args.cos()], dim=1)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.fc1(torch.nn.functional.silu(self.fc0(self.sinusoidal(t, self.embed_dim))))

#----------------------------------------------------------------------------

@persistence.persistent_class
class Generator(torch.nn.Module):
    """DCGAN G with the interface the tools use: G(z, c) -> images in [-1, 1], G.z_dim, G.c_dim."""
    def __init__(self,
        z_dim,                          # Latent dimensionality (100 in the paper).
        c_dim,                          # Conditioning label dimensionality, 0 = no labels (the label joins z).
        img_resolution,                 # Output resolution, one of RESOLUTIONS.
        img_channels,                   # Number of output color channels.
        w_dim           = 0,            # Unused (no mapping network); kept for the StyleGAN interface.
        ngf             = 64,           # Feature-map multiplier.
        bn_sets         = 1,            # Sets of batch-norm layers, chosen per call (DifGAN: one per generator step).
        cond_norm       = True,         # With c_dim > 0: the label also sets the batch norms' gains and biases.
        c_lr_multiplier = 4,            # Learning-rate multiplier of the label's weights (see Discriminator).
    ):
        from training.networks_fastgan import CCBN # here, not at the top: a pickle rebuilds this module without the training package
        check_resolution(img_resolution)
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        resolutions = [2 ** i for i in range(2, int(np.log2(img_resolution)))]     # 4 .. img_resolution / 2
        out_channels = [channels_at(res * 2, img_resolution, ngf) for res in resolutions[:-1]] + [img_channels]
        self.convs = torch.nn.ModuleList([torch.nn.ConvTranspose2d(z_dim + c_dim, channels_at(4, img_resolution, ngf), 4, 1, 0, bias=False)])
        self.convs.extend(torch.nn.ConvTranspose2d(channels_at(res, img_resolution, ngf), out, 4, 2, 1, bias=False) for res, out in zip(resolutions, out_channels))
        self.cond_norm = cond_norm and c_dim > 0
        norm = (lambda channels: CCBN(channels, c_dim, spectral=False)) if self.cond_norm else torch.nn.BatchNorm2d
        self.norms = torch.nn.ModuleList([torch.nn.ModuleList([norm(channels_at(res, img_resolution, ngf)) for res in resolutions]) for _ in range(bn_sets)])
        init_dcgan_weights(self)
        self.c_lr_multiplier = c_lr_multiplier
        with torch.no_grad():
            self.convs[0].weight[z_dim:] /= c_lr_multiplier
            for norm in [norm for norms in self.norms for norm in norms] if self.cond_norm else []:
                norm.gain.weight /= c_lr_multiplier
                norm.bias.weight /= c_lr_multiplier

    def forward(self, z: torch.Tensor, c: torch.Tensor, bn_set: int = 0, update_emas: bool = False, **unused_kwargs) -> torch.Tensor:
        _ = update_emas # batch norm keeps its statistics in training mode
        misc.assert_shape(z, [None, self.z_dim])
        c = c.to(torch.float32) * self.c_lr_multiplier
        x = torch.cat([z.to(torch.float32), c], dim=1) if c.shape[1] > 0 else z.to(torch.float32)
        x = self.convs[0](x[:, :, None, None])
        for norm, conv in zip(self.norms[bn_set], self.convs[1:]):
            x = conv(torch.relu(norm(x, c) if self.cond_norm else norm(x)))
        return torch.tanh(x)

    def extra_repr(self) -> str:
        return f'z_dim={self.z_dim:d}, c_dim={self.c_dim:d}, img_resolution={self.img_resolution:d}, img_channels={self.img_channels:d}'

#----------------------------------------------------------------------------

@persistence.persistent_class
class Discriminator(torch.nn.Module):
    """DCGAN D(img, c, t) -> logits [N, 1]; t_aware: the diffusion's timestep enters by projection (see above)."""
    def __init__(self,
        c_dim,                          # Conditioning label dimensionality, 0 = unconditional.
        img_resolution,                 # Input resolution, one of RESOLUTIONS.
        img_channels,                   # Number of input color channels.
        ndf             = 64,           # Feature-map multiplier.
        t_aware         = True,         # Project the features onto an embedding of t (Diffusion-DCGAN); False: t ignored.
        t_embed_dim     = 128,          # Features of t's sinusoidal embedding.
        c_lr_multiplier = 16,           # Learning-rate multiplier of the label embedding (see below).
    ):
        check_resolution(img_resolution)
        super().__init__()
        self.c_dim = c_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.t_aware = t_aware
        res = img_resolution // 2
        layers = [torch.nn.Conv2d(img_channels, channels_at(res, img_resolution, ndf), 4, 2, 1, bias=False), torch.nn.LeakyReLU(0.2)]
        while res > 4:
            layers += [torch.nn.Conv2d(channels_at(res, img_resolution, ndf), channels_at(res // 2, img_resolution, ndf), 4, 2, 1, bias=False)]
            layers += [torch.nn.BatchNorm2d(channels_at(res // 2, img_resolution, ndf)), torch.nn.LeakyReLU(0.2)]
            res //= 2
        self.main = torch.nn.Sequential(*layers)
        self.out = torch.nn.Conv2d(channels_at(4, img_resolution, ndf), 1, 4, 1, 0, bias=False)
        self.feature_dim = channels_at(4, img_resolution, ndf)
        self.t_embed = TimestepEmbedding(self.feature_dim, t_embed_dim) if t_aware else None
        self.c_embed = torch.nn.Linear(c_dim, self.feature_dim, bias=False) if c_dim > 0 else None
        init_dcgan_weights(self)
        # The label embedding starts as N(0, 0.02) but moves c_lr_multiplier times faster under Adam (weights kept
        # 1 / c_lr_multiplier as large, scaled back in forward): at DCGAN's learning rates it otherwise stays so small
        # that D hardly tells a right label from a wrong one and G never learns them. Measured on 1000 real MNIST
        # digits, conditional, no diffusion, seed 0, G with class-conditional batch norm (modes10k accuracy of
        # G(z, c)): no multipliers 0.10 at 30 kimg; 16 in D alone 0.14 at 30; 16 in D and G 0.30 at 30 and 0.68 at
        # 40, then each class one glyph whatever z; 16 in D and 2 in G 0.35 at 50; 16 in D and 4 in G (the
        # defaults) 0.79 at 50, with varied glyphs.
        self.c_lr_multiplier = c_lr_multiplier
        if self.c_embed is not None:
            with torch.no_grad():
                self.c_embed.weight /= c_lr_multiplier

    def forward(self, img: torch.Tensor, c: torch.Tensor, t: torch.Tensor, update_emas: bool = False, **unused_kwargs) -> torch.Tensor:
        _ = update_emas
        misc.assert_shape(img, [None, self.img_channels, self.img_resolution, self.img_resolution])
        h = self.main(img.to(torch.float32))
        logits = self.out(h).flatten(1)
        embedding = None
        if self.t_embed is not None:
            embedding = self.t_embed(t)
        if self.c_embed is not None:
            c_embedding = self.c_embed(c.to(torch.float32)) * self.c_lr_multiplier
            embedding = c_embedding if embedding is None else embedding + c_embedding
        if embedding is not None:
            logits = logits + (h.sum([2, 3]) * embedding).sum(1, keepdim=True) / np.sqrt(self.feature_dim)
        return logits

    def extra_repr(self) -> str:
        return f'c_dim={self.c_dim:d}, img_resolution={self.img_resolution:d}, img_channels={self.img_channels:d}, t_aware={self.t_aware}'

#----------------------------------------------------------------------------

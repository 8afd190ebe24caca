"""DifGAN's multi-step generator: the diffusion idea applied to G instead of D. A latent z_T ~ N(0, I) of the image's
shape is mapped step by step, z_{t-1} = G(z_t, t) for t = T..1, and every intermediate output z_{T-1}..z_0 is an
image the discriminator judges (the eta-weighted losses are DifGANLoss in training/loss.py). With T = 1 and no
timestep embedding this is the comparative study's "high-dimensional GAN": a DCGAN generator whose latent has the
image's dimension.

The step network is DCGAN's generator (training/networks_dcgan.py) taking the flattened z_t as its latent and the
timestep embedding beside the label, its weights shared by all steps; each step has its own batch-norm layers
(statistics and gains), since the steps' activations differ and eval mode needs each step's own statistics. The
timestep embedding: 'sinusoidal' (DDPM's, through an MLP), 'scalar' (t / T as one input, the naive choice) or
'none' (the steps told apart by their batch norms alone).

Two choices were forced by collapse on the digits (docs/studies.md, "The small comparison models"). An MLP step network
(global from its first layer) collapsed to one mode within 10 kimg against DCGAN's D, T = 1 and T = 4 alike, while
DCGAN's generator with a 1024-d latent learned several classes. And every step's input z_t is batch-normalized per
pixel (no gain, own running statistics): after the first step, z_t is an image whose mean over samples dwarfs its
differences between samples, the step's batch norms (over samples and positions) then scaled those differences away,
and T = 2 or 4 collapsed to one mode whatever the eta or timestep embedding."""

import torch

from torch_utils import misc
from torch_utils import persistence

T_EMBEDS = ('sinusoidal', 'scalar', 'none')

#----------------------------------------------------------------------------

@persistence.persistent_class
class Generator(torch.nn.Module):
    """G(z, c) -> z_0 [N, C, H, W]; G(z, c, return_steps=True) -> [N, steps + 1, C, H, W], z_T (the latent) .. z_0."""
    def __init__(self,
        c_dim,                          # Conditioning label dimensionality, 0 = no labels.
        img_resolution,                 # Output resolution (one of DCGAN's).
        img_channels,                   # Number of output color channels; z_dim = img_channels x img_resolution^2.
        w_dim           = 0,            # Unused (no mapping network); kept for the StyleGAN interface.
        steps           = 4,            # T, the number of generator steps (1: the high-dimensional GAN).
        ngf             = 64,           # Feature-map multiplier of the DCGAN step network.
        t_embed         = 'sinusoidal', # Timestep embedding: 'sinusoidal', 'scalar' or 'none'.
        t_embed_dim     = 128,          # Features of the sinusoidal embedding.
        t_features      = 32,           # Features the sinusoidal embedding's MLP gives the step network.
    ):
        if steps < 1:
            raise ValueError(f'DifGAN needs at least 1 generator step, not {steps}')
        if t_embed not in T_EMBEDS:
            raise ValueError(f'DifGAN timestep embedding: expected one of {", ".join(T_EMBEDS)}, not {t_embed}')
        from training.networks_dcgan import Generator as DCGANGenerator, TimestepEmbedding
        super().__init__()
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.z_dim = img_channels * img_resolution * img_resolution
        self.steps = steps
        self.t_embed_kind = t_embed
        self.t_embed = TimestepEmbedding(t_features, t_embed_dim) if t_embed == 'sinusoidal' else None
        embed_features = dict(sinusoidal=t_features, scalar=1, none=0)[t_embed]
        self.net = DCGANGenerator(z_dim=self.z_dim, c_dim=c_dim + embed_features, img_resolution=img_resolution, img_channels=img_channels, ngf=ngf, bn_sets=steps, cond_norm=False, c_lr_multiplier=1)
        self.input_norms = torch.nn.ModuleList([torch.nn.BatchNorm1d(self.z_dim, affine=False) for _ in range(steps)])

    def step(self, x: torch.Tensor, t: int, c: torch.Tensor) -> torch.Tensor:
        """One generator step on flattened images: z_t [N, z_dim] -> z_{t-1} [N, z_dim]."""
        t_column = torch.full([x.shape[0], 1], t, dtype=torch.float32, device=x.device)
        inputs = [c.to(torch.float32)]
        if self.t_embed_kind == 'sinusoidal':
            inputs.append(self.t_embed(t_column))
        elif self.t_embed_kind == 'scalar':
            inputs.append(t_column / self.steps)
        return self.net(self.input_norms[t - 1](x), torch.cat(inputs, dim=1), bn_set=t - 1).flatten(1)

    def forward(self, z: torch.Tensor, c: torch.Tensor, return_steps: bool = False, update_emas: bool = False, **unused_kwargs) -> torch.Tensor:
        _ = update_emas # batch norm keeps its statistics in training mode
        misc.assert_shape(z, [None, self.z_dim])
        x = z.to(torch.float32)
        outputs = [x]
        for t in range(self.steps, 0, -1):
            x = self.step(x, t, c)
            outputs.append(x)
        shape = [self.img_channels, self.img_resolution, self.img_resolution]
        if return_steps:
            return torch.stack(outputs, dim=1).reshape(z.shape[0], self.steps + 1, *shape)
        return x.reshape(z.shape[0], *shape)

    def extra_repr(self) -> str:
        return f'c_dim={self.c_dim:d}, img_resolution={self.img_resolution:d}, img_channels={self.img_channels:d}, steps={self.steps:d}, t_embed={self.t_embed_kind}'

#----------------------------------------------------------------------------

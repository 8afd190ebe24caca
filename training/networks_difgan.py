"""DifGAN's multi-step generator: the diffusion idea applied to G instead of D. A latent z_T ~ N(0, I) of the image's
shape is mapped step by step, z_{t-1} = G(z_t, t) for t = T..1, and every intermediate output z_{T-1}..z_0 is an
image the discriminator judges (the eta-weighted losses are DifGANLoss in training/loss.py). With T = 1 and no
timestep embedding this is the comparative study's "high-dimensional GAN": one step from an image-sized latent.

The step network is an MLP on the flattened image (a global receptive field from the first layer, which one step from
i.i.d. noise to a digit needs): Linear(D -> hidden) plus the embeddings of t and of the label, leaky ReLU 0.2,
(depth - 1) x [Linear(hidden -> hidden), leaky ReLU], Linear(hidden -> D), tanh. Its weights are shared by all
steps; the timestep embedding tells the steps apart: 'sinusoidal' (DDPM's, through an MLP), 'scalar' (t / T through
one linear layer, the naive choice) or 'none'."""

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
        img_resolution,                 # Output resolution.
        img_channels,                   # Number of output color channels; z_dim = img_channels x img_resolution^2.
        w_dim           = 0,            # Unused (no mapping network); kept for the StyleGAN interface.
        steps           = 4,            # T, the number of generator steps (1: the high-dimensional GAN).
        hidden          = 512,          # Width of the step network.
        depth           = 2,            # Hidden layers of the step network.
        t_embed         = 'sinusoidal', # Timestep embedding: 'sinusoidal', 'scalar' or 'none'.
        t_embed_dim     = 128,          # Features of the sinusoidal embedding.
    ):
        if steps < 1:
            raise ValueError(f'DifGAN needs at least 1 generator step, not {steps}')
        if t_embed not in T_EMBEDS:
            raise ValueError(f'DifGAN timestep embedding: expected one of {", ".join(T_EMBEDS)}, not {t_embed}')
        from training.networks_dcgan import TimestepEmbedding
        super().__init__()
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.z_dim = img_channels * img_resolution * img_resolution
        self.steps = steps
        self.t_embed_kind = t_embed
        self.fc_in = torch.nn.Linear(self.z_dim, hidden)
        self.fc_hidden = torch.nn.ModuleList([torch.nn.Linear(hidden, hidden) for _ in range(depth - 1)])
        self.fc_out = torch.nn.Linear(hidden, self.z_dim)
        self.t_embed = {'sinusoidal': lambda: TimestepEmbedding(hidden, t_embed_dim), 'scalar': lambda: torch.nn.Linear(1, hidden, bias=False),
                        'none': lambda: None}[t_embed]()
        self.c_embed = torch.nn.Linear(c_dim, hidden, bias=False) if c_dim > 0 else None

    def step(self, x: torch.Tensor, t: int, c: torch.Tensor) -> torch.Tensor:
        """One generator step on flattened images: z_t [N, z_dim] -> z_{t-1} [N, z_dim]."""
        h = self.fc_in(x)
        if self.t_embed_kind != 'none':
            t_column = torch.full([x.shape[0], 1], t, dtype=torch.float32, device=x.device)
            h = h + self.t_embed(t_column if self.t_embed_kind == 'sinusoidal' else t_column / self.steps)
        if self.c_embed is not None:
            h = h + self.c_embed(c.to(torch.float32))
        h = torch.nn.functional.leaky_relu(h, 0.2)
        for fc in self.fc_hidden:
            h = torch.nn.functional.leaky_relu(fc(h), 0.2)
        return torch.tanh(self.fc_out(h))

    def forward(self, z: torch.Tensor, c: torch.Tensor, return_steps: bool = False, update_emas: bool = False, **unused_kwargs) -> torch.Tensor:
        _ = update_emas
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

"""The Denoising Diffusion GAN (Xiao, Kreis, Vahdat, ICLR 2022) as a family of this codebase: a few large
denoising steps, each modelled by a conditional GAN.

Forward process: T steps (4 on CIFAR-10) of the variance-preserving schedule (training/diffusion.py's vp_betas,
beta_min 0.1, beta_max 20). Generator step: x_0' = G(x_t, z, t) with z ~ N(0, I) of nz features, then
x_(t-1) ~ q(x_(t-1) | x_t, x_0'), the forward process's Gaussian posterior (training/networks_ddpm.py's Schedule).
Sampling runs t = T..1 from x_T = z (the tools' latent); the last step's posterior mean is x_0' itself.
The discriminator judges (x_(t-1), x_t, t): real pairs come from the forward process, fake ones from G's step
(DDGANLoss in training/loss.py). Each step's latent and posterior noise come from a generator per sample seeded by
its z, so an image is a function of its z alone.

G: the UNet of networks_ddpm.py (NCSN++-like: residual blocks with skip rescaling, positional time embedding,
attention at 16 px) with its latent modulating every group norm (AdaGN, z through a 4-layer MLP to 256 features),
tanh output. D: a residual encoder of the 2C-channel pair, the time embedding added in every block, minibatch
standard deviation, a last convolution, the features summed over positions, a linear layer to one logit; labels
join the time embedding."""

import numpy as np
import torch

from torch_utils import misc
from torch_utils import persistence

#----------------------------------------------------------------------------

@persistence.persistent_class
class Generator(torch.nn.Module):
    """G(z, c) -> x_0 [N, C, H, W] through the T denoising steps; G.net(x_t, t, c, z) -> x_0' of one step."""
    def __init__(self,
        c_dim,                          # Conditioning label dimensionality, 0 = no labels.
        img_resolution,                 # Output resolution.
        img_channels,                   # Output color channels; z_dim = img_channels x img_resolution^2 (x_T).
        w_dim           = 0,            # Unused (no mapping network); kept for the StyleGAN interface.
        num_timesteps   = 4,            # T, denoising steps.
        beta_min        = 0.1,          # The variance-preserving schedule's beta_min.
        beta_max        = 20,           # Its beta_max.
        nz              = 100,          # Features of each step's latent z.
        **unet_kwargs,                  # ch, ch_mult, num_res_blocks, attn_resolutions, dropout, z_emb_dim, n_mlp: see UNet.
    ):
        from training.networks_ddpm import Schedule, UNet
        super().__init__()
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.z_dim = img_channels * img_resolution * img_resolution
        self.nz = nz
        self.schedule = Schedule(num_timesteps, 'vp', beta_min, beta_max)
        self.num_timesteps = self.schedule.num_timesteps
        self.sample_steps = self.num_timesteps
        self.sampler = 'ddpm'
        self.net = UNet(img_resolution=img_resolution, in_channels=img_channels, out_channels=img_channels, c_dim=c_dim, z_dim=nz, tanh=True, **unet_kwargs)

    def check_sampling(self, sample_steps: int, sampler: str) -> None:
        """ValueError naming the option unless the sampling asked for is DDGAN's: its T posterior steps."""
        if sample_steps != self.num_timesteps:
            raise ValueError(f'--sample-steps={sample_steps}: DDGAN samples with the {self.num_timesteps} steps it was trained on')
        if sampler != 'ddpm':
            raise ValueError(f'--sampler={sampler}: DDGAN samples from its posterior (ddpm); ddim is DDPM\'s')

    def step(self, x_t: torch.Tensor, t: torch.Tensor, c: torch.Tensor, z: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """One denoising step at timesteps t [N]: x_0' = net(x_t, t, c, z), x_(t-1) = posterior mean + sqrt(var) noise
        (the variance is 0 at t = 1: the last step gives x_0')."""
        mean, var = self.schedule.posterior(self.net(x_t, t, c, z), x_t, t - 1, t)
        return mean + var.sqrt() * noise

    def summary_call(self, z: torch.Tensor, c: torch.Tensor):
        """(module, inputs) of one step of the network at t = T, for train.py's layer summary."""
        t = torch.full([z.shape[0]], self.num_timesteps, dtype=torch.int64, device=z.device)
        return self.net, [z.reshape(-1, self.img_channels, self.img_resolution, self.img_resolution), t, c, torch.zeros([z.shape[0], self.nz], device=z.device)]

    def forward(self, z: torch.Tensor, c: torch.Tensor, sample_steps: int = None, sampler: str = None, **unused_kwargs) -> torch.Tensor:
        self.check_sampling(self.sample_steps if sample_steps is None else sample_steps, self.sampler if sampler is None else sampler)
        misc.assert_shape(z, [None, self.z_dim])
        shape = [self.img_channels, self.img_resolution, self.img_resolution]
        x = z.to(torch.float32).reshape(-1, *shape)
        generators = self.schedule.row_generators(z)
        for t in range(self.num_timesteps, 0, -1):
            latent = self.schedule.randn_rows([self.nz], generators, x.device)
            noise = self.schedule.randn_rows(shape, generators, x.device)
            x = self.step(x, torch.full([x.shape[0]], t, dtype=torch.int64, device=x.device), c, latent, noise)
        return x

    def extra_repr(self) -> str:
        return f'c_dim={self.c_dim:d}, img_resolution={self.img_resolution:d}, img_channels={self.img_channels:d}, num_timesteps={self.num_timesteps}, nz={self.nz}'

#----------------------------------------------------------------------------

@persistence.persistent_class
class DownBlock(torch.nn.Module):
    """D's residual block: conv(act x) + dense(temb), act, [downsample], conv; (h + skip(x)) / sqrt(2)."""
    def __init__(self, in_channels, out_channels, temb_dim, down=False):
        super().__init__()
        self.down = down
        self.conv0 = torch.nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.temb = torch.nn.Linear(temb_dim, out_channels)
        self.conv1 = torch.nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = torch.nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv0(torch.nn.functional.leaky_relu(x, 0.2)) + self.temb(temb)[:, :, None, None]
        h = torch.nn.functional.leaky_relu(h, 0.2)
        if self.down:
            h = torch.nn.functional.avg_pool2d(h, 2)
            x = torch.nn.functional.avg_pool2d(x, 2)
        return (self.conv1(h) + self.skip(x)) / np.sqrt(2)

@persistence.persistent_class
class Discriminator(torch.nn.Module):
    """D(x_(t-1), c, t, x_t) -> logits [N, 1], timestep-aware; x_t omitted (None) is zeros (train.py's layer summary)."""
    def __init__(self,
        c_dim,                          # Conditioning label dimensionality, 0 = unconditional.
        img_resolution,                 # Input resolution (a power of two >= 8).
        img_channels,                   # Channels of each image of the pair.
        ngf             = 64,           # Feature-map multiplier: 2, 4, 8, 8 ngf from full resolution down (the small D).
        t_emb_dim       = 256,          # Features of the time (and label) embedding.
        mbstd_group     = 4,            # Minibatch standard deviation group size.
    ):
        from training.networks_dcgan import TimestepEmbedding
        if img_resolution < 8 or img_resolution & (img_resolution - 1):
            raise ValueError(f'DDGAN\'s D takes a power of two >= 8 px, not {img_resolution}')
        super().__init__()
        self.c_dim = c_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.mbstd_group = mbstd_group
        self.t_embed = TimestepEmbedding(t_emb_dim, t_emb_dim)
        self.c_embed = torch.nn.Linear(c_dim, t_emb_dim, bias=False) if c_dim > 0 else None
        self.conv_in = torch.nn.Conv2d(2 * img_channels, 2 * ngf, 1)
        widths = [2 * ngf, 2 * ngf, 4 * ngf, 8 * ngf, 8 * ngf]
        self.blocks = torch.nn.ModuleList([DownBlock(widths[i], widths[i + 1], t_emb_dim, down=(i > 0)) for i in range(4)])
        self.conv_out = torch.nn.Conv2d(8 * ngf + 1, 8 * ngf, 3, padding=1)
        self.fc = torch.nn.Linear(8 * ngf, 1)

    def forward(self, img: torch.Tensor, c: torch.Tensor, t: torch.Tensor, x_t: torch.Tensor = None, **unused_kwargs) -> torch.Tensor:
        misc.assert_shape(img, [None, self.img_channels, self.img_resolution, self.img_resolution])
        x_t = torch.zeros_like(img) if x_t is None else x_t
        temb = self.t_embed(t)
        if self.c_embed is not None:
            temb = temb + self.c_embed(c.to(torch.float32))
        temb = torch.nn.functional.leaky_relu(temb, 0.2)
        h = self.conv_in(torch.cat([img, x_t], dim=1).to(torch.float32))
        for block in self.blocks:
            h = block(h, temb)
        n, ch, height, width = h.shape
        group = min(n, self.mbstd_group) if n % min(n, self.mbstd_group) == 0 else 1
        std = (h.reshape(group, -1, ch, height, width).var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=[1, 2, 3])
        h = torch.cat([h, std.reshape(-1, 1, 1, 1).repeat(group, 1, height, width)], dim=1)
        h = torch.nn.functional.leaky_relu(self.conv_out(h), 0.2)
        return self.fc(h.sum(dim=[2, 3]))

    def extra_repr(self) -> str:
        return f'c_dim={self.c_dim:d}, img_resolution={self.img_resolution:d}, img_channels={self.img_channels:d}'

#----------------------------------------------------------------------------

"""DDPM (Ho, Jain, Abbeel, NeurIPS 2020; improved-diffusion's epsilon-prediction setting) as a family of this
codebase: a UNet eps(x_t, t, c) trained to predict the noise of the forward process, and the sampler that runs it
from noise, packaged as the generator the tools use: G(z, c) -> images, z = x_T flattened.

Forward process: q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I), abar_t = prod_{s<=t} (1 - beta_s), abar_0 = 1,
the betas from training/diffusion.py (one copy of each schedule formula). Sampling on the timesteps
tau_0 = 0 < tau_1 < ... < tau_S = T (S = sample_steps, evenly spaced, all T by default), from x_0 predicted by
x0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t), clipped to [-1, 1]:
    'ddpm' (ancestral): x_s ~ q(x_s | x_t, x0), the Gaussian posterior of the forward process between s < t;
    'ddim' (Song et al. 2021, eta = 0): x_s = sqrt(abar_s) x0 + sqrt(1 - abar_s) eps, eps recomputed from the clipped x0.
The ancestral sampler's further noise comes from a generator per sample seeded by its z, so an image is a function
of its z alone (generate.py's seeds), and sampling leaves torch's global RNG untouched.

The UNet (also DDGAN's generator, training/networks_ddgan.py): residual blocks with group norm, the time embedding
added inside every block, skip connections rescaled by 1/sqrt(2) (NCSN++'s skip_rescale), self-attention at the
listed resolutions, strided-convolution down- and nearest-neighbour + convolution upsampling, and optionally a latent
z that modulates every group norm through an MLP (DDGAN's AdaGN). Labels are added to the time embedding."""

import hashlib

import numpy as np
import torch

from torch_utils import misc
from torch_utils import persistence

SAMPLERS = ('ddpm', 'ddim')

#----------------------------------------------------------------------------

@persistence.persistent_class
class Schedule(torch.nn.Module):
    """The discrete forward process: abar_0..abar_T as a float64 buffer, the marginal q(x_t | x_0), the posterior
    q(x_s | x_t, x_0) for s < t, and the sampling timesteps. beta_schedule: a name of training/diffusion.py's
    get_beta_schedule, or 'vp' (its vp_betas: DDGAN's variance-preserving schedule, beta_start/end = beta_min/max)."""
    def __init__(self,
        num_timesteps   = 1000,         # T, steps of the forward process.
        beta_schedule   = 'linear',     # linear | cosine | quad | sigmoid | const | jsd | vp
        beta_start      = 1e-4,         # beta_1 (vp: beta_min of the continuous process)
        beta_end        = 2e-2,         # beta_T (vp: beta_max)
    ):
        from training.diffusion import get_beta_schedule, vp_betas
        if num_timesteps < 1:
            raise ValueError(f'a diffusion needs at least 1 timestep, not {num_timesteps}')
        super().__init__()
        self.num_timesteps = int(num_timesteps)
        self.beta_schedule = beta_schedule
        betas = vp_betas(beta_start, beta_end, num_timesteps) if beta_schedule == 'vp' else get_beta_schedule(beta_schedule, beta_start, beta_end, num_timesteps)
        self.register_buffer('alphas_bar', torch.as_tensor(np.concatenate([[1.0], np.cumprod(1.0 - betas)]), dtype=torch.float64))

    def abar(self, t: torch.Tensor) -> torch.Tensor:
        """abar_t as float32 [N, 1, 1, 1] for integer timesteps t [N]."""
        return self.alphas_bar[t].to(torch.float32).reshape(-1, 1, 1, 1)

    def q_sample(self, x_0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) noise."""
        abar = self.abar(t)
        return abar.sqrt() * x_0 + (1 - abar).sqrt() * noise

    def predict_x0(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        abar = self.abar(t)
        return (x_t - (1 - abar).sqrt() * eps) / abar.sqrt()

    def predict_eps(self, x_t: torch.Tensor, t: torch.Tensor, x_0: torch.Tensor) -> torch.Tensor:
        abar = self.abar(t)
        return (x_t - abar.sqrt() * x_0) / (1 - abar).sqrt()

    def posterior(self, x_0: torch.Tensor, x_t: torch.Tensor, s: torch.Tensor, t: torch.Tensor):
        """Mean and variance of q(x_s | x_t, x_0), s < t: with a = abar_t / abar_s (the steps s+1..t as one),
        mean = sqrt(abar_s) (1 - a) / (1 - abar_t) x_0 + sqrt(a) (1 - abar_s) / (1 - abar_t) x_t,
        var = (1 - a) (1 - abar_s) / (1 - abar_t)."""
        abar_s, abar_t = self.abar(s), self.abar(t)
        a = abar_t / abar_s
        mean = abar_s.sqrt() * (1 - a) / (1 - abar_t) * x_0 + a.sqrt() * (1 - abar_s) / (1 - abar_t) * x_t
        return mean, (1 - a) * (1 - abar_s) / (1 - abar_t)

    def timesteps(self, sample_steps: int) -> list:
        """tau_0 = 0 < ... < tau_S = T, evenly spaced (rounded), for S sampling steps."""
        return [int(t) for t in np.round(np.linspace(0, self.num_timesteps, sample_steps + 1))]

    @staticmethod
    def row_generators(z: torch.Tensor) -> list:
        """A torch.Generator per row of z, seeded by the row's float32 bytes: noise drawn from them is a function of z
        (methods here, so that a pickled sampler runs without this file's module)."""
        rows = z.detach().to('cpu', torch.float32).numpy()
        return [torch.Generator(device=z.device).manual_seed(int.from_bytes(hashlib.sha256(row.tobytes()).digest()[:8], 'little') >> 1) for row in rows]

    @staticmethod
    def randn_rows(shape: list, generators: list, device: torch.device) -> torch.Tensor:
        """[len(generators), *shape] standard normal, row i from generators[i]."""
        return torch.stack([torch.randn(shape, generator=gen, device=device) for gen in generators])

    def extra_repr(self) -> str:
        return f'num_timesteps={self.num_timesteps}, beta_schedule={self.beta_schedule!r}'

#----------------------------------------------------------------------------

@persistence.persistent_class
class Norm(torch.nn.Module):
    """Group norm; with a latent embedding, its gain and bias come from it (AdaGN): GN(x) (1 + gamma(z)) + beta(z)."""
    def __init__(self, channels, z_emb_dim=0):
        super().__init__()
        self.norm = torch.nn.GroupNorm(min(32, channels // 4), channels, affine=(z_emb_dim == 0))
        self.style = torch.nn.Linear(z_emb_dim, 2 * channels) if z_emb_dim > 0 else None

    def forward(self, x: torch.Tensor, z_emb: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        if self.style is None:
            return x
        gamma, beta = self.style(z_emb)[:, :, None, None].chunk(2, dim=1)
        return x * (1 + gamma) + beta

@persistence.persistent_class
class Block(torch.nn.Module):
    """Residual block: conv(act(norm x)) + dense(temb), conv(dropout(act(norm h))), (h + skip(x)) / sqrt(2);
    then self-attention (residual, rescaled the same way) when attn."""
    def __init__(self,
        in_channels,                    # Input feature maps.
        out_channels,                   # Output feature maps.
        temb_dim,                       # Features of the time (and label) embedding.
        z_emb_dim       = 0,            # Features of the latent embedding (AdaGN), 0 = none.
        dropout         = 0,            # Dropout probability before the second convolution.
        attn            = False,        # Self-attention after the residual block.
    ):
        super().__init__()
        self.norm0 = Norm(in_channels, z_emb_dim)
        self.conv0 = torch.nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.temb = torch.nn.Linear(temb_dim, out_channels)
        self.norm1 = Norm(out_channels, z_emb_dim)
        self.dropout = torch.nn.Dropout(dropout)
        self.conv1 = torch.nn.Conv2d(out_channels, out_channels, 3, padding=1)
        torch.nn.init.zeros_(self.conv1.weight)
        torch.nn.init.zeros_(self.conv1.bias)
        self.skip = torch.nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None
        self.attn_norm = torch.nn.GroupNorm(min(32, out_channels // 4), out_channels) if attn else None
        self.qkv = torch.nn.Conv2d(out_channels, 3 * out_channels, 1) if attn else None
        self.proj = torch.nn.Conv2d(out_channels, out_channels, 1) if attn else None
        if attn:
            torch.nn.init.zeros_(self.proj.weight)
            torch.nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, temb: torch.Tensor, z_emb: torch.Tensor) -> torch.Tensor:
        h = self.conv0(torch.nn.functional.silu(self.norm0(x, z_emb)))
        h = h + self.temb(torch.nn.functional.silu(temb))[:, :, None, None]
        h = self.conv1(self.dropout(torch.nn.functional.silu(self.norm1(h, z_emb))))
        x = (h + (x if self.skip is None else self.skip(x))) / np.sqrt(2)
        if self.qkv is not None:
            n, c, height, width = x.shape
            q, k, v = self.qkv(self.attn_norm(x)).reshape(n, 3, c, height * width).unbind(1)
            w = torch.softmax(torch.einsum('ncq,nck->nqk', q, k) / np.sqrt(c), dim=2)
            h = self.proj(torch.einsum('nqk,nck->ncq', w, v).reshape(n, c, height, width))
            x = (x + h) / np.sqrt(2)
        return x

#----------------------------------------------------------------------------

@persistence.persistent_class
class UNet(torch.nn.Module):
    """UNet(x_t, t, c, z) -> [N, out_channels, H, W]: DDPM's eps(x_t, t) and DDGAN's x_0(x_t, t, z)."""
    def __init__(self,
        img_resolution,                 # Input and output resolution (a power of two).
        in_channels,                    # Input channels.
        out_channels,                   # Output channels.
        c_dim           = 0,            # Label dimensionality, 0 = unconditional; labels join the time embedding.
        ch              = 128,          # Feature maps at full resolution.
        ch_mult         = (1, 2, 2, 2), # Feature-map multipliers per resolution, halving it from the second on.
        num_res_blocks  = 2,            # Residual blocks per resolution (the decoder has one more).
        attn_resolutions = (16,),       # Resolutions with self-attention.
        dropout         = 0.1,          # Dropout in the residual blocks.
        z_dim           = 0,            # Latent dimensionality (DDGAN's nz), 0 = no latent.
        z_emb_dim       = 256,          # Features of the latent's embedding.
        n_mlp           = 4,            # Layers of the latent's MLP.
        tanh            = False,        # tanh on the output (an image prediction).
    ):
        from training.networks_dcgan import TimestepEmbedding
        levels = len(ch_mult)
        if img_resolution % 2 ** (levels - 1) != 0:
            raise ValueError(f'UNet: {img_resolution} px does not halve {levels - 1} times (ch_mult {list(ch_mult)})')
        super().__init__()
        self.img_resolution = img_resolution
        self.in_channels = in_channels
        self.c_dim = c_dim
        self.z_dim = z_dim
        self.tanh = tanh
        temb_dim = 4 * ch
        self.t_embed = TimestepEmbedding(temb_dim, ch)
        self.c_embed = torch.nn.Linear(c_dim, temb_dim, bias=False) if c_dim > 0 else None
        z_emb = z_emb_dim if z_dim > 0 else 0
        z_layers = [torch.nn.Linear(z_dim if i == 0 else z_emb, z_emb) for i in range(n_mlp)] if z_dim > 0 else []
        self.z_embed = torch.nn.Sequential(*[m for layer in z_layers for m in (layer, torch.nn.LeakyReLU(0.2))]) if z_dim > 0 else None
        block = lambda cin, cout, res: Block(cin, cout, temb_dim, z_emb, dropout, attn=res in attn_resolutions)
        self.conv_in = torch.nn.Conv2d(in_channels, ch, 3, padding=1)
        self.down = torch.nn.ModuleList()
        skips = [ch]
        cur, res = ch, img_resolution
        for level, mult in enumerate(ch_mult):
            for _ in range(num_res_blocks):
                self.down.append(block(cur, ch * mult, res))
                cur = ch * mult
                skips.append(cur)
            if level != levels - 1:
                self.down.append(torch.nn.Conv2d(cur, cur, 3, stride=2, padding=1))
                res //= 2
                skips.append(cur)
        self.mid = torch.nn.ModuleList([Block(cur, cur, temb_dim, z_emb, dropout, attn=True), Block(cur, cur, temb_dim, z_emb, dropout)])
        self.up = torch.nn.ModuleList()
        for level, mult in reversed(list(enumerate(ch_mult))):
            for _ in range(num_res_blocks + 1):
                self.up.append(block(cur + skips.pop(), ch * mult, res))
                cur = ch * mult
            if level != 0:
                self.up.append(torch.nn.Sequential(torch.nn.Upsample(scale_factor=2, mode='nearest'), torch.nn.Conv2d(cur, cur, 3, padding=1)))
                res *= 2
        self.norm_out = Norm(cur, z_emb)
        self.conv_out = torch.nn.Conv2d(cur, out_channels, 3, padding=1)
        torch.nn.init.zeros_(self.conv_out.weight)
        torch.nn.init.zeros_(self.conv_out.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor, z: torch.Tensor = None) -> torch.Tensor:
        misc.assert_shape(x, [None, self.in_channels, self.img_resolution, self.img_resolution])
        temb = self.t_embed(t)
        if self.c_embed is not None:
            temb = temb + self.c_embed(c.to(torch.float32))
        z_emb = self.z_embed(z.to(torch.float32)) if self.z_embed is not None else None
        h = self.conv_in(x.to(torch.float32))
        hs = [h]
        for layer in self.down:
            h = layer(h, temb, z_emb) if isinstance(layer, Block) else layer(h)
            hs.append(h)
        for layer in self.mid:
            h = layer(h, temb, z_emb)
        for layer in self.up:
            h = layer(torch.cat([h, hs.pop()], dim=1), temb, z_emb) if isinstance(layer, Block) else layer(h)
        h = self.conv_out(torch.nn.functional.silu(self.norm_out(h, z_emb)))
        return torch.tanh(h) if self.tanh else h

#----------------------------------------------------------------------------

@persistence.persistent_class
class Generator(torch.nn.Module):
    """DDPM as the tools' generator: G(z, c, sample_steps, sampler) runs the sampler from x_T = z; G.unet is eps."""
    def __init__(self,
        c_dim,                          # Conditioning label dimensionality, 0 = no labels.
        img_resolution,                 # Output resolution.
        img_channels,                   # Output color channels; z_dim = img_channels x img_resolution^2.
        w_dim           = 0,            # Unused (no mapping network); kept for the StyleGAN interface.
        num_timesteps   = 1000,         # T, steps of the forward process.
        beta_schedule   = 'linear',     # training/diffusion.py's schedule of beta_1..beta_T.
        beta_start      = 1e-4,         # beta_1.
        beta_end        = 2e-2,         # beta_T.
        sample_steps    = None,         # Default sampling steps S (1..T), None = T.
        sampler         = 'ddpm',       # Default sampler: ddpm (ancestral) | ddim (deterministic).
        clip_x0         = True,         # Clip the predicted x_0 to [-1, 1] while sampling.
        **unet_kwargs,                  # ch, ch_mult, num_res_blocks, attn_resolutions, dropout: see UNet.
    ):
        super().__init__()
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.z_dim = img_channels * img_resolution * img_resolution
        self.clip_x0 = clip_x0
        self.schedule = Schedule(num_timesteps, beta_schedule, beta_start, beta_end)
        self.num_timesteps = self.schedule.num_timesteps
        self.sample_steps = self.num_timesteps if sample_steps is None else int(sample_steps)
        self.sampler = sampler
        self.check_sampling(self.sample_steps, sampler)
        self.unet = UNet(img_resolution=img_resolution, in_channels=img_channels, out_channels=img_channels, c_dim=c_dim, **unet_kwargs)

    def check_sampling(self, sample_steps: int, sampler: str) -> None:
        """ValueError naming the option unless S steps of this sampler can run."""
        if not 1 <= sample_steps <= self.num_timesteps:
            raise ValueError(f'--sample-steps={sample_steps}: expected 1 to {self.num_timesteps}, the trained timesteps')
        if sampler not in SAMPLERS:
            raise ValueError(f'--sampler={sampler}: expected one of {", ".join(SAMPLERS)}')

    def summary_call(self, z: torch.Tensor, c: torch.Tensor):
        """(module, inputs) of one step of the network at t = T, for train.py's layer summary."""
        t = torch.full([z.shape[0]], self.num_timesteps, dtype=torch.int64, device=z.device)
        return self.unet, [z.reshape(-1, self.img_channels, self.img_resolution, self.img_resolution), t, c]

    def forward(self, z: torch.Tensor, c: torch.Tensor, sample_steps: int = None, sampler: str = None, **unused_kwargs) -> torch.Tensor:
        sample_steps = self.sample_steps if sample_steps is None else sample_steps
        sampler = self.sampler if sampler is None else sampler
        self.check_sampling(sample_steps, sampler)
        misc.assert_shape(z, [None, self.z_dim])
        shape = [self.img_channels, self.img_resolution, self.img_resolution]
        x = z.to(torch.float32).reshape(-1, *shape)
        generators = self.schedule.row_generators(z) if sampler == 'ddpm' else None
        taus = self.schedule.timesteps(sample_steps)
        for s, t in zip(taus[-2::-1], taus[:0:-1]):
            t_vec = torch.full([x.shape[0]], t, dtype=torch.int64, device=x.device)
            s_vec = torch.full_like(t_vec, s)
            x_0 = self.schedule.predict_x0(x, t_vec, self.unet(x, t_vec, c))
            if self.clip_x0:
                x_0 = x_0.clamp(-1, 1)
            if sampler == 'ddim':
                eps = self.schedule.predict_eps(x, t_vec, x_0)
                x = self.schedule.q_sample(x_0, s_vec, eps)
            else:
                mean, var = self.schedule.posterior(x_0, x, s_vec, t_vec)
                x = mean + var.sqrt() * self.schedule.randn_rows(shape, generators, x.device) if s > 0 else mean
        return x

    def extra_repr(self) -> str:
        return f'c_dim={self.c_dim:d}, img_resolution={self.img_resolution:d}, img_channels={self.img_channels:d}, sample_steps={self.sample_steps}, sampler={self.sampler!r}'

#----------------------------------------------------------------------------

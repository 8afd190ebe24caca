"""The adaptive Gaussian-mixture diffusion of Diffusion-GAN (Wang et al., ICLR 2023), shared by every GAN family.

Real and generated images go through the same forward diffusion before the timestep-aware discriminator:
    x_t = sqrt(abar_t) * x_0 + sqrt(1 - abar_t) * sigma * eps,  eps ~ N(0, I),  abar_t = prod_{s<=t} (1 - beta_s),
with abar_0 = 1 (t = 0 is the clean image). The number of steps T follows the adaptive probability p exactly as
ADA's augmentation probability does: p moves by sign(r_d - target) * images / (ada_kimg * 1000) with
r_d = E[sign(D(x_t real))], and T = t_min + round(p * (t_max - t_min)); the beta schedule is rebuilt for each T.

Timesteps follow the official release rather than a fresh draw per image: every T update draws a pool of
`pool_size` timesteps from pi(t) and appends as many zeros, and each image then takes its t uniformly from
that pool, so half of the images are seen clean. With ts_dist='priority' the official code weights t = 1..T by
0..T-1 (so t = 1 is never drawn), while the paper's Eq. 11 says P(t) proportional to t; we follow the code.

Optionally an image augmentation ('ada': training.augment.AugmentPipe, its p following the diffusion's p;
'diff': DiffAugment) is applied before the diffusion; with diffuse=False it is applied alone, p still adapting
(ADA without diffusion, the baselines of the paper). Everything is differentiable in x_0 (reparameterized
noise), so G trains through it. The object is persistent and stored in snapshots as 'augment_pipe'."""

import importlib.util
from typing import Optional

import numpy as np
import torch

import dnnlib
from torch_utils import persistence

#----------------------------------------------------------------------------

BETA_SCHEDULES = ('linear', 'cosine', 'quad', 'sigmoid', 'const', 'jsd')
TS_DISTS = ('priority', 'uniform')
AUG_TYPES = ('no', 'ada', 'diff')

# ADA's 'bgc' pipeline (blit, geometric, color), the official release's choice for --aug=ada.
ADA_BGC_KWARGS = dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1, brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1)

#----------------------------------------------------------------------------

def get_beta_schedule(beta_schedule: str, beta_start: float, beta_end: float, num_diffusion_timesteps: int) -> np.ndarray:
    """Noise variances beta_1..beta_T as float64 [T]. 'jsd' is 1/T, 1/(T-1), ..., 1 and ignores start/end;
    'cosine' is Nichol & Dhariwal's abar(t) = cos^2((t/T + s) / (1 + s) * pi/2), s = 0.008, betas capped at 0.999."""
    T = int(num_diffusion_timesteps)
    if beta_schedule == 'linear':
        betas = np.linspace(beta_start, beta_end, T, dtype=np.float64)
    elif beta_schedule == 'quad':
        betas = np.linspace(beta_start ** 0.5, beta_end ** 0.5, T, dtype=np.float64) ** 2
    elif beta_schedule == 'const':
        betas = np.full(T, beta_end, dtype=np.float64)
    elif beta_schedule == 'jsd':
        betas = 1.0 / np.linspace(T, 1, T, dtype=np.float64)
    elif beta_schedule == 'sigmoid':
        betas = 1.0 / (1.0 + np.exp(-np.linspace(-6, 6, T, dtype=np.float64))) * (beta_end - beta_start) + beta_start
    elif beta_schedule == 'cosine':
        s = 0.008
        abar = np.cos((np.arange(T + 1, dtype=np.float64) / T + s) / (1 + s) * np.pi / 2) ** 2
        betas = np.minimum(1 - abar[1:] / abar[:-1], 0.999)
    else:
        raise dnnlib.UserError(f'--beta_schedule: unknown schedule "{beta_schedule}", expected one of {", ".join(BETA_SCHEDULES)}')
    return betas

def vp_betas(beta_min: float, beta_max: float, num_diffusion_timesteps: int, eps_small: float = 1e-3) -> np.ndarray:
    """Noise variances beta_1..beta_T as float64 [T] of the variance-preserving SDE discretized at T steps (DDGAN's
    schedule, Xiao et al. 2022): at u_i = eps_small + (1 - eps_small) i / T, i = 0..T, abar(u) = exp(-u^2 (beta_max -
    beta_min) / 2 - u beta_min), and beta_i = 1 - abar(u_i) / abar(u_(i-1)). DDGAN's defaults: beta_min 0.1, beta_max 20."""
    T = int(num_diffusion_timesteps)
    u = eps_small + (1.0 - eps_small) * np.arange(T + 1, dtype=np.float64) / T
    abar = np.exp(-0.5 * u ** 2 * (beta_max - beta_min) - u * beta_min)
    return 1.0 - abar[1:] / abar[:-1]

#----------------------------------------------------------------------------

@persistence.persistent_class
class Diffusion(torch.nn.Module):
    """Forward diffusion with adaptive T; call it on real and fake images alike: x_t, t = diffusion(x_0)."""
    def __init__(self,
        beta_schedule   = 'linear',     # linear | cosine | quad | sigmoid | const | jsd
        beta_start      = 1e-4,         # beta_1
        beta_end        = 2e-2,         # beta_T
        t_min           = 10,           # smallest T (at p = 0)
        t_max           = 1000,         # largest T (at p = 1)
        noise_sd        = 0.05,         # sigma: standard deviation of the Gaussian noise
        ts_dist         = 'priority',   # pi(t): priority (weights t-1 on 1..T) | uniform (on 1..T)
        pool_size       = 32,           # timesteps drawn per T update, mixed 1:1 with t = 0
        target          = 0.6,          # target value of r_d = E[sign(D(x_t real))]
        ada_kimg        = 100,          # thousands of images for p to go from 0 to 1
        p_step          = None,         # p += p_step at every adaptation whatever r_d is (DuDGAN's C: p rising linearly
                                        # over the run); None = adaptive, following the sign of r_d - target
        aug             = 'no',         # augmentation before the diffusion: no | ada | diff
        ada_maxp        = None,         # cap on ADA's probability (which otherwise equals p), None = no cap
        diffaug_policy  = 'color,translation,cutout', # DiffAugment ops for aug = 'diff'
        ada_kwargs      = None,         # kwargs of training.augment.AugmentPipe, None = 'bgc'
        seed            = 0,            # seed of the numpy generator that draws the timestep pools
        diffuse         = True,         # False: no noise, t = 0 for every image; p adapts the augmentation alone
                                        # (train.py --no-diffusion --aug=ada: the plain StyleGAN2-ADA / StyleGAN3 baseline)
        pool_growth     = False,        # True: of the 2 * pool_size pool entries, min(round(p * 2 * pool_size), 1.5 * pool_size)
                                        # are drawn and the rest are 0, so the diffused share grows with p (diffusion-projected-gan)
        per_channel     = False,        # True: every channel of every sample takes its own t (feature maps in the projected D)
    ):
        super().__init__()
        if ts_dist not in TS_DISTS:
            raise dnnlib.UserError(f'--ts_dist: unknown timestep distribution "{ts_dist}", expected one of {", ".join(TS_DISTS)}')
        if beta_schedule not in BETA_SCHEDULES:
            raise dnnlib.UserError(f'--beta_schedule: unknown schedule "{beta_schedule}", expected one of {", ".join(BETA_SCHEDULES)}')
        if aug not in AUG_TYPES:
            raise dnnlib.UserError(f'--aug: unknown augmentation "{aug}", expected one of {", ".join(AUG_TYPES)}')
        # Priority weights are t-1, so T = 1 would leave nothing to draw.
        min_t = 2 if ts_dist == 'priority' else 1
        if not (min_t <= t_min <= t_max):
            raise dnnlib.UserError(f'--t_min/--t_max: expected {min_t} <= t_min <= t_max for --ts_dist={ts_dist}, got t_min={t_min}, t_max={t_max}')
        if ada_kimg <= 0:
            raise dnnlib.UserError(f'--ada_kimg: expected a positive number of kimg, got {ada_kimg}')
        if p_step is not None and p_step < 0:
            raise dnnlib.UserError(f'Diffusion: expected p_step >= 0, got {p_step}')
        if pool_size < 1:
            raise dnnlib.UserError(f'Diffusion: expected pool_size >= 1 timesteps per T update, got {pool_size}')
        self.beta_schedule  = beta_schedule
        self.beta_start     = float(beta_start)
        self.beta_end       = float(beta_end)
        self.t_min          = int(t_min)
        self.t_max          = int(t_max)
        self.noise_sd       = float(noise_sd)
        self.ts_dist        = ts_dist
        self.pool_size      = int(pool_size)
        self.target         = float(target)
        self.ada_kimg       = float(ada_kimg)
        self.p_step         = None if p_step is None else float(p_step)
        self.aug_type       = aug
        self.diffuse        = bool(diffuse)
        self.pool_growth    = bool(pool_growth)
        self.per_channel    = bool(per_channel)
        self.ada_maxp       = ada_maxp
        self._rng           = np.random.default_rng(seed)
        self._cache         = {} # device -> (sqrt(abar), sqrt(1 - abar), pool) as tensors; rebuilt whenever they change.
        self.p              = 0.0

        # The augmentations are built by name, so that loading a pickle of this module's source needs only
        # dnnlib and torch_utils; training.augment is optional and imported only when ADA is asked for.
        if aug == 'ada':
            if importlib.util.find_spec('training.augment') is None:
                raise dnnlib.UserError('--aug=ada: the ADA pipeline training/augment.py (AugmentPipe) is not available')
            self.aug = dnnlib.util.construct_class_by_name(class_name='training.augment.AugmentPipe', **(ADA_BGC_KWARGS if ada_kwargs is None else ada_kwargs))
        elif aug == 'diff':
            self.aug = dnnlib.util.construct_class_by_name(class_name='training.diffaug.DiffAugmentPipe', policy=diffaug_policy)
        else:
            self.aug = torch.nn.Identity()
        self.update_T()

    def _set_schedule(self, T: int) -> None:
        self.T = int(T)
        self.betas = get_beta_schedule(self.beta_schedule, self.beta_start, self.beta_end, self.T)
        self.alphas_bar = np.concatenate([[1.0], np.cumprod(1.0 - self.betas)]) # [T + 1], index = t
        self._cache = {}

    def _sync_ada_p(self) -> None:
        if self.aug_type == 'ada':
            ada_p = self.p if self.ada_maxp is None else min(self.p, self.ada_maxp)
            self.aug.p.copy_(torch.as_tensor(ada_p))

    def _draw_timesteps(self, size: int) -> np.ndarray:
        if self.ts_dist == 'priority':
            weights = np.arange(self.T, dtype=np.float64) # t = 1..T weighted 0..T-1, as in the official release.
            return self._rng.choice(np.arange(1, self.T + 1), size=size, p=weights / weights.sum())
        return self._rng.integers(1, self.T + 1, size=size)

    def update_T(self) -> None:
        """Recompute T from p, rebuild the schedule, redraw the timestep pool and pass p on to ADA."""
        # Python's round() (half to even) as in the official release, so that T matches it for every p.
        self._set_schedule(np.clip(self.t_min + round(self.p * (self.t_max - self.t_min)), self.t_min, self.t_max))
        slots = 2 * self.pool_size
        num_drawn = min(round(self.p * slots), slots * 3 // 4) if self.pool_growth else self.pool_size
        self.t_pool = np.concatenate([self._draw_timesteps(num_drawn), np.zeros(slots - num_drawn, dtype=np.int64)]).astype(np.int64)
        self._sync_ada_p()

    def adapt(self, r_d: float, num_images: int) -> None:
        """One adaptation step after `num_images` images (batch * ada_interval) whose D sign mean was r_d (a fixed
        step p_step instead, when set)."""
        adjust = self.p_step if self.p_step is not None else np.sign(float(r_d) - self.target) * num_images / (self.ada_kimg * 1000)
        self.p = float(np.clip(self.p + adjust, 0.0, 1.0))
        self.update_T()

    def get_state(self) -> dict:
        """JSON-serialisable state for logs and snapshots."""
        return {'p': float(self.p), 'T': int(self.T), 't_pool': [int(t) for t in self.t_pool]}

    def set_state(self, state: dict) -> None:
        """Restore p, T and the pool exactly, without drawing a new pool."""
        T = int(state['T'])
        t_pool = np.asarray(state['t_pool'], dtype=np.int64)
        if T < 1 or t_pool.ndim != 1 or t_pool.size == 0 or t_pool.min() < 0 or t_pool.max() > T:
            raise dnnlib.UserError(f'Diffusion state: expected T >= 1 and a non-empty t_pool with values in [0, T], got T={T}, t_pool={t_pool.tolist()}')
        self.p = float(state['p'])
        self._set_schedule(T)
        self.t_pool = t_pool
        self._sync_ada_p()

    def _tensors(self, device: torch.device):
        key = str(device)
        if key not in self._cache:
            self._cache[key] = (
                torch.as_tensor(np.sqrt(self.alphas_bar), dtype=torch.float32, device=device),
                torch.as_tensor(np.sqrt(1.0 - self.alphas_bar), dtype=torch.float32, device=device),
                torch.as_tensor(self.t_pool, dtype=torch.int64, device=device),
            )
        return self._cache[key]

    def forward(self, x_0: torch.Tensor):
        """x_0: [N, C, H, W] images. Returns (x_t [N, C, H, W], t int64 [N, 1], or [N, C] with per_channel); t and
        the noise use torch's RNG."""
        x_0 = self.aug(x_0)
        if x_0.ndim != 4:
            raise ValueError(f'Diffusion expects images of shape [N, C, H, W], got {list(x_0.shape)}')
        if not self.diffuse:
            return x_0, torch.zeros([x_0.shape[0], 1], dtype=torch.int64, device=x_0.device)
        sqrt_abar, sqrt_one_minus_abar, t_pool = self._tensors(x_0.device)
        t = t_pool[torch.randint(t_pool.shape[0], [x_0.shape[0], x_0.shape[1] if self.per_channel else 1], device=x_0.device)]
        noise = torch.randn_like(x_0) * self.noise_sd
        x_t = sqrt_abar[t].to(x_0.dtype)[:, :, None, None] * x_0 + sqrt_one_minus_abar[t].to(x_0.dtype)[:, :, None, None] * noise
        return x_t, t

    def __getstate__(self):
        # Pickles (snapshots) carry no device tensors: the cache is rebuilt on first use wherever they are loaded.
        return dict(super().__getstate__(), _cache={})

    def extra_repr(self) -> str:
        if not self.diffuse:
            return f'p={self.p:.4f}, no diffusion, aug={self.aug_type!r}'
        return f'p={self.p:.4f}, T={self.T}, beta_schedule={self.beta_schedule!r}, ts_dist={self.ts_dist!r}, noise_sd={self.noise_sd}'

#----------------------------------------------------------------------------

def adaptive_p_of(obj) -> Optional[float]:
    """The adaptive p of a Diffusion object, or None for anything else (e.g. StyleGAN2-ADA's AugmentPipe, whose
    p is ADA's). Unpickled objects are instances of the class their pickle's source defines, which is not this
    module's class when the source differs, so they are recognised by name and state."""
    if type(obj).__name__ == 'Diffusion' and hasattr(obj, 'get_state') and isinstance(getattr(obj, 'p', None), float):
        return obj.p
    return None

#----------------------------------------------------------------------------

"""Perceptual Path Length (PPL) from "A Style-Based Generator Architecture for Generative Adversarial Networks"
(Karras et al. 2019): the mean LPIPS-like VGG16 distance between images at two nearby points of a latent
interpolation path, divided by the squared step. Matches the original TensorFlow implementation."""

import copy

import numpy as np
import torch

from . import metric_utils

#----------------------------------------------------------------------------

def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between the directions of a and b (unit-length result)."""
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    d = (a * b).sum(dim=-1, keepdim=True)
    angle = t * torch.acos(d)
    c = b - d * a # the part of b orthogonal to a
    c = c / c.norm(dim=-1, keepdim=True)
    d = a * torch.cos(angle) + c * torch.sin(angle)
    return d / d.norm(dim=-1, keepdim=True)

#----------------------------------------------------------------------------

class PPLSampler(torch.nn.Module):
    """One batch of squared VGG16 distances between images at interpolation points t and t + epsilon, / epsilon^2."""
    def __init__(self,
        G,                  # generator (a copy: its noise buffers are overwritten)
        epsilon,            # interpolation step
        space,              # 'z' (slerp of latents) or 'w' (lerp of mapped latents)
        sampling,           # 'full' (t ~ U[0, 1)) or 'end' (t = 0)
        crop,               # crop to the central face region, as for FFHQ in the StyleGAN paper
        vgg16,              # LPIPS VGG16 from metric_utils.get_lpips_vgg16()
    ):
        assert space in ['z', 'w']
        assert sampling in ['full', 'end']
        super().__init__()
        self.G = G
        self.epsilon = epsilon
        self.space = space
        self.sampling = sampling
        self.crop = crop
        self.vgg16 = vgg16

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        # Random numbers are drawn on the CPU, so that a seed gives the same paths on every device.
        device = c.device
        t = torch.rand([c.shape[0]]) * (1 if self.sampling == 'full' else 0)
        z0, z1 = torch.randn([c.shape[0] * 2, self.G.z_dim]).chunk(2)
        t, z0, z1 = t.to(device), z0.to(device), z1.to(device)

        if self.space == 'w':
            w0, w1 = self.G.mapping(z=torch.cat([z0, z1]), c=torch.cat([c, c])).chunk(2)
            wt0 = w0.lerp(w1, t.unsqueeze(1).unsqueeze(2))
            wt1 = w0.lerp(w1, t.unsqueeze(1).unsqueeze(2) + self.epsilon)
        else:
            zt0 = slerp(z0, z1, t.unsqueeze(1))
            zt1 = slerp(z0, z1, t.unsqueeze(1) + self.epsilon)
            wt0, wt1 = self.G.mapping(z=torch.cat([zt0, zt1]), c=torch.cat([c, c])).chunk(2)

        # Fresh constant noise per batch, shared by both ends of each path.
        for name, buf in self.G.named_buffers():
            if name.endswith('.noise_const'):
                buf.copy_(torch.randn(buf.shape))

        img = self.G.synthesis(ws=torch.cat([wt0, wt1]), noise_mode='const', force_fp32=True)
        if self.crop:
            assert img.shape[2] == img.shape[3]
            s = img.shape[2] // 8
            img = img[:, :, s * 3 : s * 7, s * 2 : s * 6]
        factor = self.G.img_resolution // 256 # box-downsample to 256x256
        if factor > 1:
            img = img.reshape([-1, img.shape[1], img.shape[2] // factor, factor, img.shape[3] // factor, factor]).mean([3, 5])
        img = (img + 1) * (255 / 2)

        lpips_t0, lpips_t1 = self.vgg16(img, resize_images=False, return_lpips=True).chunk(2)
        return (lpips_t0 - lpips_t1).square().sum(1) / self.epsilon ** 2

#----------------------------------------------------------------------------

def ppl_from_distances(dist: np.ndarray) -> float:
    """Mean of the distances between their 1st and 99th percentiles (outliers from degenerate paths dropped)."""
    lo = np.percentile(dist, 1, method='lower')
    hi = np.percentile(dist, 99, method='higher')
    return float(dist[(dist >= lo) & (dist <= hi)].mean())

def compute_ppl(opts: metric_utils.MetricOptions, num_samples: int, epsilon: float, space: str, sampling: str, crop: bool, batch_size: int) -> float:
    """PPL over num_samples paths; NaN on ranks > 0."""
    vgg16 = metric_utils.get_lpips_vgg16(device=opts.device, num_gpus=opts.num_gpus, rank=opts.rank, verbose=opts.progress.verbose)
    G = copy.deepcopy(opts.G).eval().requires_grad_(False).to(opts.device)
    sampler = PPLSampler(G=G, epsilon=epsilon, space=space, sampling=sampling, crop=crop, vgg16=vgg16)
    sample_labels = metric_utils.random_label_sampler(opts=opts, c_dim=G.c_dim)

    dist = []
    progress = opts.progress.sub(tag='ppl sampling', num_items=num_samples)
    with torch.no_grad(), metric_utils.seeded_rng(opts.device, seed=opts.rank):
        for _batch_start in range(0, num_samples, batch_size * opts.num_gpus):
            x = sampler(sample_labels(batch_size))
            if opts.num_gpus > 1:
                gathered = [torch.empty_like(x) for _ in range(opts.num_gpus)]
                torch.distributed.all_gather(gathered, x)
                x = torch.cat(gathered)
            dist.append(x.cpu())
            progress.update(min(sum(d.shape[0] for d in dist), num_samples))
    if opts.rank != 0:
        return float('nan')
    return ppl_from_distances(torch.cat(dist)[:num_samples].numpy())

#----------------------------------------------------------------------------

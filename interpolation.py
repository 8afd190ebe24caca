"""Walk a class-conditional generator from one class to another: the label fed to the mapping network goes from the
one-hot vector of class A to that of class B in equal steps (the mapping embeds it linearly, so the label embedding is
interpolated), with the latent fixed (one seed) or travelling from z(seed 1) to z(seed 2) along the great circle
(slerp). z(seed) = RandomState(seed).randn(1, z_dim), as in generate.py. Writes the images as one PNG strip and, with
--video, an mp4 (imageio-ffmpeg). Classes and seeds not given are drawn from --seed, itself drawn and printed when not
given, so that every output can be made again."""

import os
import secrets
from typing import List, Optional, Tuple

import click
import numpy as np
import torch

import dnnlib
import legacy
from dnnlib.cli import make_dirs, run_cli
from generate import check_output, save_png, seed_latents, synthesis_kwargs_for, to_uint8, write_mp4

#----------------------------------------------------------------------------

def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """From vector a to vector b [D] at fractions t [N] -> [N, D]: the direction turns at a constant angular speed
    in the plane of a and b, the length goes linearly from |a| to |b| (lerp when a and b are parallel)."""
    t = np.asarray(t, dtype=np.float64)[:, None]
    norm_a, norm_b = np.linalg.norm(a), np.linalg.norm(b)
    unit_a, unit_b = a / norm_a, b / norm_b
    theta = np.arccos(np.clip(unit_a @ unit_b, -1, 1))
    if theta < 1e-6:
        return (1 - t) * a + t * b
    direction = (np.sin((1 - t) * theta) * unit_a + np.sin(t * theta) * unit_b) / np.sin(theta)
    return ((1 - t) * norm_a + t * norm_b) * direction

def interpolation_inputs(c_dim: int, classes: Tuple[int, int], seeds: List[int], z_dim: int, num: int) -> Tuple[np.ndarray, np.ndarray]:
    """Latents [num, z_dim] and labels [num, c_dim] of the path: label (1 - t) e_A + t e_B at t = 0, 1/(num-1), ..., 1;
    the latent of seeds[0] throughout, or slerp from seeds[0] to seeds[1]."""
    t = np.linspace(0, 1, num)
    labels = np.zeros([num, c_dim])
    labels[:, classes[0]] += 1 - t
    labels[:, classes[1]] += t
    z = seed_latents(seeds, z_dim)
    latents = np.repeat(z[:1], num, axis=0) if len(seeds) == 1 else slerp(z[0], z[1], t)
    return latents, labels

def render(G: torch.nn.Module, latents: np.ndarray, labels: np.ndarray, truncation_psi: float, noise_mode: str, batch_size: int = 16):
    """uint8 images [N, H, W, C] of G_ema for each latent and label, in batches."""
    device = next(G.parameters()).device
    for start in range(0, len(latents), batch_size):
        z = torch.from_numpy(latents[start:start + batch_size]).to(device, torch.float32)
        c = torch.from_numpy(labels[start:start + batch_size]).to(device, torch.float32)
        with torch.no_grad():
            yield from to_uint8(G(z, c, truncation_psi=truncation_psi, noise_mode=noise_mode, **synthesis_kwargs_for(device)))

#----------------------------------------------------------------------------

def parse_ints(count: Tuple[int, ...]):
    """click callback for 'A,B': a list of len in count of non-negative integers."""
    def parse(ctx, param, value):
        if value is None:
            return None
        try:
            values = [int(x) for x in value.split(',')]
        except ValueError:
            values = []
        if len(values) not in count or any(x < 0 for x in values):
            raise click.BadParameter(f'{value!r}: expected {" or ".join(str(n) for n in count)} comma-separated non-negative integers')
        return values
    return parse

@click.command(context_settings=dict(max_content_width=120))
@click.option('--network', 'network_pkl', help='Network pickle (a class-conditional generator)', metavar='PATH|URL', required=True)
@click.option('--outdir',      help='Where to save the strip (and video)', metavar='DIR', required=True)
@click.option('--classes',     help='From class A to class B [default: two distinct classes drawn from --seed]', metavar='A,B', callback=parse_ints((2,)))
@click.option('--seeds',       help='Latent seed S (fixed latent) or S1,S2 (latent slerped with the label) [default: drawn from --seed]', metavar='S[,S2]', callback=parse_ints((1, 2)))
@click.option('--latent',      help='Without --seeds: fixed (one latent) or interp (two, slerped)', type=click.Choice(['fixed', 'interp']), default='fixed', show_default=True)
@click.option('--seed',        help='Seed of the random choices [default: drawn and printed]', metavar='INT', type=click.IntRange(min=0))
@click.option('--steps',       help='Images in the strip, ends included', metavar='INT', type=click.IntRange(min=2), default=10, show_default=True)
@click.option('--video',       help='Also write an mp4 of the walk', is_flag=True)
@click.option('--frames',      help='Frames of the video', metavar='INT', type=click.IntRange(min=2), default=120, show_default=True)
@click.option('--fps',         help='Frames per second of the video', metavar='INT', type=click.IntRange(min=1), default=30, show_default=True)
@click.option('--trunc', 'truncation_psi', help='Truncation psi', metavar='FLOAT', type=float, default=1, show_default=True)
@click.option('--noise-mode',  help='Per-pixel noise', type=click.Choice(['const', 'random', 'none']), default='const', show_default=True)
def main(network_pkl: str, outdir: str, classes: Optional[List[int]], seeds: Optional[List[int]], latent: str, seed: Optional[int], steps: int,
         video: bool, frames: int, fps: int, truncation_psi: float, noise_mode: str):
    """Images between two classes of a class-conditional generator (DuDGAN, conditional StyleGAN2/3).

    \b
    # Random classes and latent; the seed of those choices is printed.
    python interpolation.py --outdir=out --network=PKL
    \b
    # From class 3 to class 8 with the latent of seed 7, 12 images, and an mp4 of 120 frames.
    python interpolation.py --outdir=out --classes=3,8 --seeds=7 --steps=12 --video --network=PKL
    """
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    print(f'Loading network from "{network_pkl}"...')
    G = legacy.open_network(network_pkl)['G_ema']
    G = G.to(device).eval().requires_grad_(False)

    # Check everything before writing anything.
    if G.c_dim < 2:
        raise dnnlib.UserError(f'--network={network_pkl}: the network is {"unconditional" if G.c_dim == 0 else "conditional on 1 class"}; interpolating between classes needs 2 or more')
    if classes is not None and (max(classes) >= G.c_dim or classes[0] == classes[1]):
        raise dnnlib.UserError(f'--classes={classes[0]},{classes[1]}: expected two different classes from 0 to {G.c_dim - 1}')
    check_output(G, network_pkl, outdir)
    if classes is None or seeds is None:
        if seed is None:
            seed = secrets.randbelow(2**31)
        print(f'Random choices from --seed={seed}')
        rnd = np.random.RandomState(seed)
        if classes is None:
            classes = [int(x) for x in rnd.choice(G.c_dim, size=2, replace=False)]
        if seeds is None:
            seeds = [int(x) for x in rnd.randint(2**31, size=1 if latent == 'fixed' else 2)]
    name = f'interp-class{classes[0]}to{classes[1]}-seed{"-".join(str(s) for s in seeds)}'
    print(f'Class {classes[0]} to class {classes[1]}, latent ' + (f'of seed {seeds[0]}' if len(seeds) == 1 else f'from seed {seeds[0]} to seed {seeds[1]}'))

    make_dirs(outdir, '--outdir')
    images = list(render(G, *interpolation_inputs(G.c_dim, classes, seeds, G.z_dim, steps), truncation_psi=truncation_psi, noise_mode=noise_mode))
    strip = os.path.join(outdir, f'{name}.png')
    save_png(np.concatenate(images, axis=1), strip)
    print(f'Wrote {steps} images to "{strip}"')

    if video:
        path = os.path.join(outdir, f'{name}.mp4')
        write_mp4(render(G, *interpolation_inputs(G.c_dim, classes, seeds, G.z_dim, frames), truncation_psi=truncation_psi, noise_mode=noise_mode), path, fps=fps, num_frames=frames)
        print(f'Wrote {frames} frames to "{path}"')

#----------------------------------------------------------------------------

if __name__ == '__main__':
    run_cli(main)

#----------------------------------------------------------------------------

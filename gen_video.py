"""Latent interpolation video from a network pickle, as StyleGAN3's gen_video.py: a grid of cells, each looping
through its keyframes (seeds), with the per-layer styles w interpolated between keyframes (cubic by default, periodic
so that the video loops) and rendered with noise_mode const, --w-frames frames per keyframe at 60 fps, H.264.

Seeds fill the grid cell by cell: with --grid=WxH and K keyframes, seed i goes to cell i // K, keyframe i % K
(seeds repeat when --num-keyframes asks for more than given; --shuffle-seed shuffles them first). Grayscale networks
give grayscale videos (stored as RGB). Works for every generator with a mapping network and per-layer styles."""

import os
import re
from typing import List, Optional, Tuple

import click
import numpy as np
import scipy.interpolate
import torch

import dnnlib
import legacy
from dnnlib.cli import check_output_path, run_cli
from generate import check_styles, class_label, parse_seeds, seed_latents, synthesis_kwargs_for, to_uint8, write_mp4

WRAPS = 2   # keyframe periods tiled on each side, so that the cubic spline is periodic over the loop

#----------------------------------------------------------------------------

def keyframe_seeds(seeds: List[int], grid: Tuple[int, int], num_keyframes: Optional[int], shuffle_seed: Optional[int]) -> np.ndarray:
    """Seeds as [grid_h, grid_w, num_keyframes]."""
    grid_w, grid_h = grid
    if num_keyframes is None:
        if len(seeds) % (grid_w * grid_h) != 0:
            raise dnnlib.UserError(f'--seeds: {len(seeds)} seeds do not fill a {grid_w}x{grid_h} grid evenly; give a multiple of {grid_w * grid_h} seeds, or --num-keyframes')
        num_keyframes = len(seeds) // (grid_w * grid_h)
    all_seeds = np.array([seeds[i % len(seeds)] for i in range(num_keyframes * grid_w * grid_h)], dtype=np.int64)
    if shuffle_seed is not None:
        np.random.RandomState(shuffle_seed).shuffle(all_seeds)
    return all_seeds.reshape(grid_h, grid_w, num_keyframes)

def interpolators(ws: np.ndarray, kind: str) -> list:
    """Per cell, t -> ws at time t in keyframes (float), periodic in t with period num_keyframes; ws is
    [grid_h, grid_w, num_keyframes, num_ws, w_dim]."""
    num_keyframes = ws.shape[2]
    x = np.arange(-num_keyframes * WRAPS, num_keyframes * (WRAPS + 1))
    return [[scipy.interpolate.interp1d(x, np.tile(cell, [WRAPS * 2 + 1, 1, 1]), kind=kind, axis=0) for cell in row] for row in ws]

def render_frames(G: torch.nn.Module, seeds: np.ndarray, w_frames: int, truncation_psi: float = 1, kind: str = 'cubic', class_idx: Optional[int] = None):
    """Yield the frames of the video as uint8 [grid_h * H, grid_w * W, C]."""
    grid_h, grid_w, num_keyframes = seeds.shape
    label = class_label(G, class_idx)
    z = torch.from_numpy(seed_latents(seeds.flatten().tolist(), G.z_dim)).to(label.device)
    with torch.no_grad():
        ws = G.mapping(z, label.repeat([len(z), 1]), truncation_psi=truncation_psi)
    grid = interpolators(ws.cpu().numpy().reshape(grid_h, grid_w, num_keyframes, *ws.shape[1:]), kind=kind)
    synthesis_kwargs = dict(noise_mode='const', **synthesis_kwargs_for(label.device))
    for frame_idx in range(num_keyframes * w_frames):
        cell_ws = torch.from_numpy(np.stack([cell(frame_idx / w_frames) for row in grid for cell in row])).to(label.device, torch.float32)
        with torch.no_grad():
            images = to_uint8(G.synthesis(cell_ws, **synthesis_kwargs)) # [grid_h * grid_w, H, W, C]
        _n, h, w, c = images.shape
        yield images.reshape(grid_h, grid_w, h, w, c).transpose(0, 2, 1, 3, 4).reshape(grid_h * h, grid_w * w, c)

#----------------------------------------------------------------------------

def parse_grid(ctx, param, value):
    match = re.fullmatch(r'(\d+)[x,](\d+)', value)
    if match is None or int(match.group(1)) < 1 or int(match.group(2)) < 1:
        raise click.BadParameter(f'"{value}": expected WxH with positive integers, e.g. 4x2')
    return int(match.group(1)), int(match.group(2))

@click.command(context_settings=dict(max_content_width=120))
@click.option('--network', 'network_pkl', help='Network pickle (path or URL)', metavar='[PATH|URL]', required=True)
@click.option('--seeds', help='Seeds of the keyframes (e.g. 0-31)', metavar='LIST', required=True, callback=parse_seeds)
@click.option('--shuffle-seed', help='Shuffle the seeds with this seed', metavar='INT', type=int)
@click.option('--grid', help='Grid of videos, width x height', metavar='WxH', default='1x1', show_default=True, callback=parse_grid)
@click.option('--num-keyframes', help='Keyframes per cell  [default: seeds / cells]', metavar='INT', type=click.IntRange(min=1))
@click.option('--w-frames', help='Frames between two keyframes', metavar='INT', type=click.IntRange(min=1), default=120, show_default=True)
@click.option('--kind', help='Interpolation of w between keyframes', type=click.Choice(['cubic', 'linear']), default='cubic', show_default=True)
@click.option('--trunc', 'truncation_psi', help='Truncation psi', metavar='FLOAT', type=float, default=1, show_default=True)
@click.option('--class', 'class_idx', help='Class label of a conditional network', metavar='INT', type=int)
@click.option('--output', help='Output video (.mp4)', metavar='FILE', required=True)
def main(network_pkl: str, seeds: List[int], shuffle_seed: Optional[int], grid: Tuple[int, int], num_keyframes: Optional[int], w_frames: int,
         kind: str, truncation_psi: float, class_idx: Optional[int], output: str):
    """Render a latent interpolation video.

    \b
    # A 4x2 grid looping through 4 keyframes each, 2 s between keyframes.
    python gen_video.py --output=lerp.mp4 --trunc=1 --seeds=0-31 --grid=4x2 --network=PKL
    \b
    # The demo digits, one cell through 8 seeds.
    python gen_video.py --output=digits.mp4 --seeds=0-7 --w-frames=30 --network=checkpoints/demo-digits32-100kimg.pkl
    """
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    print(f'Loading network from "{network_pkl}"...')
    G = legacy.open_network(network_pkl)['G_ema']
    G = G.to(device).eval().requires_grad_(False)

    # Check everything before writing anything.
    check_styles(G, network_pkl, 'an interpolation video')
    if G.img_channels not in [1, 3]:
        raise dnnlib.UserError(f'--network={network_pkl}: the network makes {G.img_channels}-channel images; a video needs 1 or 3')
    if not output.lower().endswith('.mp4'):
        raise dnnlib.UserError(f'--output={output}: expected an .mp4 file name')
    if not os.path.isdir(os.path.dirname(os.path.abspath(output))):
        raise dnnlib.UserError(f'--output={output}: expected a file in an existing directory')
    check_output_path(output, '--output', is_dir=False)
    all_seeds = keyframe_seeds(seeds, grid, num_keyframes, shuffle_seed)
    class_label(G, class_idx)

    num_frames = all_seeds.shape[2] * w_frames
    write_mp4(render_frames(G, all_seeds, w_frames, truncation_psi=truncation_psi, kind=kind, class_idx=class_idx), output, fps=60, num_frames=num_frames)
    print(f'Wrote {num_frames} frames to "{output}"')

#----------------------------------------------------------------------------

if __name__ == '__main__':
    run_cli(main)

#----------------------------------------------------------------------------

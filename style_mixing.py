"""Style-mixing grid from a network pickle (ours or official StyleGAN2-ADA / Diffusion-GAN): each cell takes the
per-layer styles w of its row seed, with the layers of --styles replaced by those of its column seed. The first row
shows the column images, the first column the row images. Same numbers as the official style_mixing.py: z from
RandomState(seed), w = w_avg + (mapping(z, c) - w_avg) * trunc, noise_mode const by default.

Writes outdir/ROW-COL.png for every pair (ROW-ROW.png and COL-COL.png for the unmixed images) and outdir/grid.png.
Works for every generator with a mapping network and per-layer styles (G.mapping, G.synthesis, G.num_ws)."""

import os
from typing import Dict, List, Optional

import click
import numpy as np
import torch

import dnnlib
import legacy
from dnnlib.cli import make_dirs, parse_range, run_cli
from generate import check_output, check_styles, class_label, parse_seeds, save_png, seed_latents, synthesis_kwargs_for, to_uint8

#----------------------------------------------------------------------------

def seed_styles(G: torch.nn.Module, seeds: List[int], label: torch.Tensor, truncation_psi: float) -> Dict[int, torch.Tensor]:
    """seed -> ws [num_ws, w_dim] of that seed's z, truncated toward G.mapping.w_avg."""
    device = label.device
    z = torch.from_numpy(seed_latents(seeds, G.z_dim)).to(device)
    with torch.no_grad():
        ws = G.mapping(z, label.repeat([len(seeds), 1]))
    w_avg = G.mapping.w_avg
    ws = w_avg + (ws - w_avg) * truncation_psi
    return dict(zip(seeds, ws))

def mix_styles(row_ws: torch.Tensor, col_ws: torch.Tensor, styles: List[int]) -> torch.Tensor:
    """The row's ws with the layers in styles taken from the column's."""
    ws = row_ws.clone()
    ws[styles] = col_ws[styles]
    return ws

def style_mixing_images(G: torch.nn.Module, row_seeds: List[int], col_seeds: List[int], styles: List[int], truncation_psi: float = 1,
                        noise_mode: str = 'const', class_idx: Optional[int] = None) -> Dict[tuple, np.ndarray]:
    """(row_seed, col_seed) -> uint8 image [H, W, C] for every pair, and (seed, seed) for every unmixed image."""
    label = class_label(G, class_idx)
    seeds = list(dict.fromkeys(row_seeds + col_seeds))
    ws = seed_styles(G, seeds, label, truncation_psi)
    synthesis_kwargs = dict(noise_mode=noise_mode, **synthesis_kwargs_for(label.device))
    pairs = [(seed, seed) for seed in seeds] + [(row, col) for row in row_seeds for col in col_seeds if row != col]
    images = dict()
    with torch.no_grad():
        for row, col in pairs:
            images[(row, col)] = to_uint8(G.synthesis(mix_styles(ws[row], ws[col], styles)[None], **synthesis_kwargs))[0]
    return images

def grid_image(images: Dict[tuple, np.ndarray], row_seeds: List[int], col_seeds: List[int]) -> np.ndarray:
    """The grid as one uint8 image: black top-left cell, column images along the top, row images down the left."""
    h, w, c = next(iter(images.values())).shape
    canvas = np.zeros([h * (len(row_seeds) + 1), w * (len(col_seeds) + 1), c], dtype=np.uint8)
    for j, col in enumerate(col_seeds):
        canvas[:h, w * (j + 1) : w * (j + 2)] = images[(col, col)]
    for i, row in enumerate(row_seeds):
        canvas[h * (i + 1) : h * (i + 2), :w] = images[(row, row)]
        for j, col in enumerate(col_seeds):
            canvas[h * (i + 1) : h * (i + 2), w * (j + 1) : w * (j + 2)] = images[(row, col)]
    return canvas

#----------------------------------------------------------------------------

def parse_styles(ctx, param, value):
    return None if value is None else parse_range(value)

@click.command(context_settings=dict(max_content_width=120))
@click.option('--network', 'network_pkl', help='Network pickle (path or URL)', metavar='[PATH|URL]', required=True)
@click.option('--rows', 'row_seeds', help='Seeds of the rows (e.g. 85,100,75)', metavar='LIST', required=True, callback=parse_seeds)
@click.option('--cols', 'col_seeds', help='Seeds of the columns (e.g. 55,821,1789)', metavar='LIST', required=True, callback=parse_seeds)
@click.option('--styles', help='Layers whose styles come from the column seed  [default: 0-6, the coarse ones; those that exist]', metavar='LIST', callback=parse_styles)
@click.option('--trunc', 'truncation_psi', help='Truncation psi', metavar='FLOAT', type=float, default=1, show_default=True)
@click.option('--class', 'class_idx', help='Class label of a conditional network', metavar='INT', type=int)
@click.option('--noise-mode', help='Per-pixel noise', type=click.Choice(['const', 'random', 'none']), default='const', show_default=True)
@click.option('--outdir', help='Where to save the images', metavar='DIR', required=True)
def main(network_pkl: str, row_seeds: List[int], col_seeds: List[int], styles: Optional[List[int]], truncation_psi: float, class_idx: Optional[int], noise_mode: str, outdir: str):
    """Style-mixing grid: rows take the styles of --styles from the columns.

    \b
    # Coarse styles (layers 0-6) of the column seeds on the row seeds.
    python style_mixing.py --outdir=out --rows=85,100,75 --cols=55,821,1789 --network=PKL
    \b
    # Only the fine styles of our 32x32 demo (its 8 layers: 0-7).
    python style_mixing.py --outdir=out --rows=0-3 --cols=4-7 --styles=4-7 --network=checkpoints/demo-digits32-100kimg.pkl
    """
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    print(f'Loading network from "{network_pkl}"...')
    G = legacy.open_network(network_pkl)['G_ema']
    G = G.to(device).eval().requires_grad_(False)

    # Check everything before writing anything.
    check_styles(G, network_pkl, 'style mixing')
    styles = [style for style in range(7) if style < G.num_ws] if styles is None else styles
    bad = [style for style in styles if style >= G.num_ws]
    if bad:
        raise dnnlib.UserError(f'--styles: layer {bad[0]} does not exist; the network has {G.num_ws} style layers (0 to {G.num_ws - 1})')
    class_label(G, class_idx)
    check_output(G, network_pkl, outdir)
    make_dirs(outdir, '--outdir')

    images = style_mixing_images(G, row_seeds, col_seeds, styles, truncation_psi=truncation_psi, noise_mode=noise_mode, class_idx=class_idx)
    for (row, col), image in images.items():
        save_png(image, os.path.join(outdir, f'{row}-{col}.png'))
    save_png(grid_image(images, row_seeds, col_seeds), os.path.join(outdir, 'grid.png'))
    print(f'Wrote {len(images)} images and grid.png to "{outdir}"')

#----------------------------------------------------------------------------

if __name__ == '__main__':
    run_cli(main)

#----------------------------------------------------------------------------

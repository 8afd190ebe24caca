"""Generate images from a network pickle: our training snapshots or official StyleGAN2-ADA / StyleGAN3 /
Diffusion-GAN pickles, by path or URL. One PNG per seed, the same image as the official tools give for that
seed: z = RandomState(seed).randn(1, z_dim), img = G_ema(z, one-hot class, truncation_psi, noise_mode),
pixels = clamp(img * 127.5 + 128, 0, 255) as uint8. Runs on the GPU if there is one, else on the CPU."""

import inspect
import io
import math
import os
from typing import Iterable, Iterator, List, Optional, Tuple

import click
import imageio
import numpy as np
import PIL.Image
import torch
import tqdm

import dnnlib
import legacy
from dnnlib.cli import check_output_path, make_dirs, parse_range, run_cli
from training.training_loop import save_image_grid

#----------------------------------------------------------------------------

def seed_latents(seeds: List[int], z_dim: int) -> np.ndarray:
    """[len(seeds), z_dim] float64 latents; row i comes from RandomState(seeds[i]) alone, so an image does not
    depend on which other seeds share its batch."""
    return np.concatenate([np.random.RandomState(seed).randn(1, z_dim) for seed in seeds], axis=0)

#----------------------------------------------------------------------------

def class_label(G: torch.nn.Module, class_idx: Optional[int]) -> torch.Tensor:
    """One-hot label [1, c_dim] on G's device for --class (zeros [1, 0] for an unconditional network); UserError
    for a --class that does not fit the network."""
    if G.c_dim == 0 and class_idx is not None:
        raise dnnlib.UserError(f'--class={class_idx}: the network is unconditional; leave --class out')
    if G.c_dim != 0 and class_idx is None:
        raise dnnlib.UserError(f'--class is required: the network is conditional with {G.c_dim} classes (0 to {G.c_dim - 1})')
    if G.c_dim != 0 and not 0 <= class_idx < G.c_dim:
        raise dnnlib.UserError(f'--class={class_idx}: out of range, the network has {G.c_dim} classes (0 to {G.c_dim - 1})')
    label = torch.zeros([1, G.c_dim], device=next(G.parameters()).device)
    if G.c_dim != 0:
        label[:, class_idx] = 1
    return label

def to_uint8(img: torch.Tensor) -> np.ndarray:
    """Images [N, C, H, W] in [-1, 1] -> uint8 [N, H, W, C], rounded as the official tools do."""
    return (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).cpu().numpy()

def synthesis_kwargs_for(device: torch.device) -> dict:
    """Float16 layers are not run on the CPU; our networks switch by themselves, official ones need to be told."""
    return dict(force_fp32=True) if device.type == 'cpu' else dict()

def check_styles(G: torch.nn.Module, network_pkl: str, purpose: str) -> None:
    """UserError unless G has a mapping network with per-layer styles (StyleGAN2/3 generators); purpose names
    what needs them, for the message."""
    if not all(hasattr(G, name) for name in ['mapping', 'synthesis', 'num_ws', 'w_dim']) or not hasattr(G.mapping, 'w_avg'):
        raise dnnlib.UserError(f'--network={network_pkl}: {type(G).__name__} has no mapping network with per-layer styles; {purpose} needs one (StyleGAN2/3 generators)')

def save_png(image: np.ndarray, fname: str) -> None:
    """uint8 [H, W, C] with C = 1 (grayscale) or 3 (RGB), written atomically: a full disk or an interrupted run
    leaves no half image under the name."""
    buf = io.BytesIO()
    PIL.Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image, 'L' if image.shape[2] == 1 else 'RGB').save(buf, format='png')
    dnnlib.util.write_atomic(fname, buf.getvalue())

def write_mp4(frames: Iterable[np.ndarray], fname: str, fps: int, num_frames: Optional[int] = None) -> None:
    """uint8 frames [H, W, C] (grayscale stored as RGB) as an H.264 mp4 through imageio-ffmpeg, written to a temporary
    name and renamed when complete: an interrupted run leaves no half video under the name. num_frames: show a
    progress bar of that length."""
    partial = fname + '.partial.mp4'
    try:
        with imageio.get_writer(partial, mode='I', fps=fps, codec='libx264', macro_block_size=1) as video:
            for frame in (frames if num_frames is None else tqdm.tqdm(frames, total=num_frames, unit='frame')):
                video.append_data(np.repeat(frame, 3, axis=2) if frame.shape[2] == 1 else frame)
        os.replace(partial, fname)
    finally:
        if os.path.exists(partial):
            os.remove(partial)

#----------------------------------------------------------------------------

def generate_images(
    G:              torch.nn.Module,        # Generator (G_ema of a snapshot), already on its device.
    seeds:          List[int],              # One image per seed, in this order.
    truncation_psi: float = 1,              # Truncation trick strength, 1 = off.
    noise_mode:     str = 'const',          # Per-pixel noise: 'const', 'random' or 'none'.
    class_idx:      Optional[int] = None,   # Class of a conditional network, in [0, c_dim).
    batch_size:     int = 32,               # Images per forward pass; on the CPU the pixels do not depend on it.
    sample_kwargs:  Optional[dict] = None,  # A sampler's (DDPM, DDGAN) sample_steps and sampler; None = its defaults.
) -> Iterator[Tuple[List[int], np.ndarray]]:
    """Yield (seeds, uint8 images [N, H, W, C]) batch by batch."""
    device = next(G.parameters()).device
    label = class_label(G, class_idx)
    synthesis_kwargs = synthesis_kwargs_for(device)
    for start in range(0, len(seeds), batch_size):
        batch_seeds = seeds[start : start + batch_size]
        # float32, as every mapping network casts z first thing (FastGAN, without one, needs it so).
        z = torch.from_numpy(seed_latents(batch_seeds, G.z_dim)).to(device=device, dtype=torch.float32)
        with torch.no_grad():
            img = G(z, label.repeat([len(batch_seeds), 1]), truncation_psi=truncation_psi, noise_mode=noise_mode, **synthesis_kwargs, **(sample_kwargs or {}))
        yield batch_seeds, to_uint8(img)

#----------------------------------------------------------------------------

def write_grid(images: np.ndarray, fname: str) -> None:
    """Tile uint8 images [N, H, W, C] into one PNG, ceil(sqrt(N)) per row; missing cells of the last row are black."""
    n, h, w, c = images.shape
    gw = math.ceil(math.sqrt(n))
    gh = math.ceil(n / gw)
    tiles = np.zeros([gw * gh, c, h, w], dtype=np.float32)
    tiles[:n] = images.transpose(0, 3, 1, 2)
    save_image_grid(tiles, fname, drange=[0, 255], grid_size=(gw, gh))

def write_intermediates(G: torch.nn.Module, seeds: List[int], class_idx: Optional[int], fname: str) -> None:
    """A multi-step generator's (DifGAN's) outputs z_T (the latent, clipped to [-1, 1]) .. z_0 as one PNG: a row per
    seed, T + 1 columns, the latents of generate_images."""
    device = next(G.parameters()).device
    label = class_label(G, class_idx)
    z = torch.from_numpy(seed_latents(seeds, G.z_dim)).to(device=device, dtype=torch.float32)
    with torch.no_grad():
        steps = G(z, label.repeat([len(seeds), 1]), return_steps=True)            # [N, T + 1, C, H, W]
    tiles = to_uint8(steps.flatten(0, 1)).transpose(0, 3, 1, 2).astype(np.float32)
    save_image_grid(tiles, fname, drange=[0, 255], grid_size=(steps.shape[1], len(seeds)))

#----------------------------------------------------------------------------

def check_output(G: torch.nn.Module, network_pkl: str, outdir: str) -> None:
    """UserError unless G's images can be written as PNGs into outdir."""
    if G.img_channels not in [1, 3]:
        raise dnnlib.UserError(f'--network={network_pkl}: the network makes {G.img_channels}-channel images; PNG output needs 1 (grayscale) or 3 (RGB)')
    check_output_path(outdir, '--outdir')

def render_projected_w(G: torch.nn.Module, projected_w: str, noise_mode: str, network_pkl: str, outdir: str) -> None:
    """outdir/projNN.png for each ws [num_ws, w_dim] in the 'w' array of a projected_w.npz, as StyleGAN2-ADA does."""
    try:
        with np.load(projected_w) as data:
            ws = data['w']
    except (OSError, ValueError, KeyError) as err:
        raise dnnlib.UserError(f'--projected-w={projected_w}: expected a projected_w.npz of projector.py with an array "w" ({err})') from err
    check_styles(G, network_pkl, '--projected-w')
    if ws.ndim != 3 or ws.shape[1:] != (G.num_ws, G.w_dim):
        raise dnnlib.UserError(f'--projected-w={projected_w}: its w has shape {list(ws.shape)}, but the network takes [N, {G.num_ws}, {G.w_dim}]')
    check_output(G, network_pkl, outdir)
    make_dirs(outdir, '--outdir')
    device = next(G.parameters()).device
    for idx, w in enumerate(torch.from_numpy(ws).to(device)):
        with torch.no_grad():
            save_png(to_uint8(G.synthesis(w[None], noise_mode=noise_mode, **synthesis_kwargs_for(device)))[0], os.path.join(outdir, f'proj{idx:02d}.png'))
    print(f'Wrote {len(ws)} images to "{outdir}"')

def make_transform(translate: Tuple[float, float], angle: float) -> np.ndarray:
    """3x3 matrix of the output image's transform: rotation by angle degrees, then translation by (x, y) in the
    units of StyleGAN3's input grid (1 = the width of the image), as in NVIDIA's gen_images.py."""
    s = np.sin(angle / 360 * np.pi * 2)
    c = np.cos(angle / 360 * np.pi * 2)
    return np.array([[c, s, translate[0]], [-s, c, translate[1]], [0, 0, 1]])

def set_input_transform(G: torch.nn.Module, translate: Tuple[float, float], rotate: float, network_pkl: str) -> None:
    """Give a StyleGAN3 generator's Fourier-feature input the inverse of the transform (it transforms the sampling
    grid); UserError for a generator without one when a transform is asked for."""
    if not hasattr(getattr(getattr(G, 'synthesis', None), 'input', None), 'transform'):
        if tuple(translate) != (0, 0) or rotate != 0:
            raise dnnlib.UserError(f'--translate/--rotate: {type(G).__module__}.{type(G).__name__} of --network={network_pkl} has no input transform (StyleGAN3 generators only)')
        return
    m = np.linalg.inv(make_transform(translate, rotate))
    G.synthesis.input.transform.copy_(torch.from_numpy(m))

def sample_kwargs_for(G: torch.nn.Module, sample_steps: Optional[int], sampler: Optional[str], network_pkl: str) -> dict:
    """G's kwargs for --sample-steps / --sampler (None: G's defaults); UserError for a generator that is no sampler
    (DDPM, DDGAN) or for steps and samplers it cannot run."""
    kwargs = {key: value for key, value in dict(sample_steps=sample_steps, sampler=sampler).items() if value is not None}
    if len(kwargs) == 0:
        return kwargs
    if not hasattr(G, 'check_sampling'):
        raise dnnlib.UserError(f'--sample-steps/--sampler: the {type(G).__name__} of --network={network_pkl} is no iterative sampler (DDPM, DDGAN); leave them out')
    try:
        G.check_sampling(kwargs.get('sample_steps', G.sample_steps), kwargs.get('sampler', G.sampler))
    except ValueError as err:
        raise dnnlib.UserError(f'{err} (--network={network_pkl})') from err
    return kwargs

def parse_vec2(ctx, param, value):
    """click callback: 'X,Y' -> (X, Y) as floats."""
    parts = value.split(',')
    try:
        if len(parts) != 2:
            raise ValueError()
        return (float(parts[0]), float(parts[1]))
    except ValueError:
        raise click.BadParameter(f'"{value}": expected two comma-separated numbers X,Y') from None

def parse_seeds(ctx, param, value):
    """click callback: '0-99,200' -> seeds, each a valid numpy RandomState seed."""
    return None if value is None else parse_range(value, max_value=2**32 - 1)

@click.command(context_settings=dict(max_content_width=120))
@click.option('--network', 'network_pkl', help='Network pickle (path or URL)', metavar='[PATH|URL]', required=True)
@click.option('--seeds',      help='Seeds, ranges and lists (e.g. 0-99,200)', metavar='LIST', callback=parse_seeds)
@click.option('--projected-w', 'projected_w', help='Render the ws of a projected_w.npz (projector.py) instead of seeds', metavar='FILE')
@click.option('--trunc',      'truncation_psi', help='Truncation psi', metavar='FLOAT', type=float, default=1, show_default=True)
@click.option('--class',      'class_idx', help='Class label of a conditional network', metavar='INT', type=int)
@click.option('--noise-mode', help='Per-pixel noise', type=click.Choice(['const', 'random', 'none']), default='const', show_default=True)
@click.option('--translate',  help='Translate the output of a StyleGAN3 generator by X,Y (1 = the image width)', metavar='VEC2', callback=parse_vec2, default='0,0', show_default=True)
@click.option('--rotate',     help='Rotate the output of a StyleGAN3 generator, degrees', metavar='ANGLE', type=float, default=0, show_default=True)
@click.option('--outdir',     help='Where to save the images', metavar='DIR', required=True)
@click.option('--batch',      'batch_size', help='Images per forward pass (1 = bit-identical to the official tools; larger is faster, may differ in the last bit)', metavar='INT', type=click.IntRange(min=1), default=1, show_default=True)
@click.option('--grid',       help='Also write all images as one grid, outdir/grid.png', is_flag=True)
@click.option('--intermediates', help='DifGAN: also write every seed\'s outputs z_T..z_0 as one image, a row per seed, outdir/intermediates.png', is_flag=True)
@click.option('--sample-steps', 'sample_steps', help='DDPM: sampling steps, evenly spaced over the trained ones (DDGAN: its T only) [default: the network\'s]', metavar='INT', type=click.IntRange(min=1))
@click.option('--sampler',    help='DDPM: ancestral (ddpm) or deterministic strided (ddim) sampling [default: the network\'s]', type=click.Choice(['ddpm', 'ddim']))
@click.option('--safe',       help='Load the .safetensors + .json beside the snapshot instead of unpickling (runs no code from the files)', is_flag=True)
def main(network_pkl: str, seeds: Optional[List[int]], projected_w: Optional[str], truncation_psi: float, class_idx: Optional[int], noise_mode: str,
         translate: Tuple[float, float], rotate: float, outdir: str, batch_size: int, grid: bool, intermediates: bool, sample_steps: Optional[int],
         sampler: Optional[str], safe: bool):
    """Generate images from a trained network, one PNG per seed (seed0000.png, ...).

    \b
    # Our own snapshot, 8 images.
    python generate.py --network=training-runs/00000-digits-demo/network-snapshot-000100.pkl --seeds=0-7 --outdir=out
    \b
    # An official conditional pickle, class 3, truncated, with a grid of all images.
    python generate.py --network=https://.../cifar10.pkl --seeds=0-63 --class=3 --trunc=0.7 --grid --outdir=out
    \b
    # A snapshot from an untrusted source: weights only, nothing from the files is executed.
    python generate.py --network=network-snapshot-000100.safetensors --safe --seeds=0-7 --outdir=out
    \b
    # The result of projector.py, rendered again (proj00.png).
    python generate.py --network=PKL --projected-w=out/projected_w.npz --outdir=out
    \b
    # DDPM: 50 deterministic DDIM steps instead of the trained 1000 ancestral ones.
    python generate.py --network=PKL --seeds=0-7 --sample-steps=50 --sampler=ddim --outdir=out
    \b
    # DifGAN: the outputs z_T..z_0 of 8 seeds, a row each (intermediates.png).
    python generate.py --network=PKL --seeds=0-7 --intermediates --outdir=out
    \b
    # A StyleGAN3 pickle, its output shifted and rotated (the input transform of NVIDIA's gen_images.py).
    python generate.py --network=stylegan3-r-afhqv2-512x512.pkl --seeds=0-3 --translate=0.3,0 --rotate=15 --outdir=out
    """
    if (seeds is None) == (projected_w is None):
        raise dnnlib.UserError('--seeds or --projected-w: give exactly one of them')
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    print(f'Loading network from "{network_pkl}"...')
    G = legacy.open_network(network_pkl, safe=safe)['G_ema']
    G = G.to(device).eval().requires_grad_(False)

    # Check everything before writing anything.
    set_input_transform(G, translate, rotate, network_pkl)
    if projected_w is not None:
        return render_projected_w(G, projected_w, noise_mode, network_pkl, outdir)
    class_label(G, class_idx)
    if truncation_psi != 1 and 'truncation_psi' not in inspect.signature(G.forward).parameters:
        raise dnnlib.UserError(f'--trunc={truncation_psi:g}: the {type(G).__name__} of --network={network_pkl} has no truncation (no mapping network with w_avg); leave --trunc at 1')
    if intermediates and not hasattr(G, 'steps'):
        raise dnnlib.UserError(f'--intermediates: --network={network_pkl} has a one-step {type(G).__name__}; the option shows the steps of a multi-step generator (DifGAN)')
    sample_kwargs = sample_kwargs_for(G, sample_steps, sampler, network_pkl)
    check_output(G, network_pkl, outdir)
    make_dirs(outdir, '--outdir')

    all_images = []
    num_done = 0
    for batch_seeds, images in generate_images(G, seeds, truncation_psi=truncation_psi, noise_mode=noise_mode, class_idx=class_idx, batch_size=batch_size, sample_kwargs=sample_kwargs):
        for seed, image in zip(batch_seeds, images):
            save_png(image, os.path.join(outdir, f'seed{seed:04d}.png'))
        if grid:
            all_images.append(images)
        num_done += len(batch_seeds)
        print(f'Generated {num_done}/{len(seeds)} images')
    if grid:
        write_grid(np.concatenate(all_images), os.path.join(outdir, 'grid.png'))
    if intermediates:
        write_intermediates(G, seeds, class_idx, os.path.join(outdir, 'intermediates.png'))
    print(f'Wrote {len(seeds)} images to "{outdir}"')

#----------------------------------------------------------------------------

if __name__ == '__main__':
    run_cli(main)

#----------------------------------------------------------------------------

"""Tests of generate.py and dnnlib.cli.parse_range: per-seed PNGs equal to an independent computation of the
official formula (RandomState(seed).randn -> G -> uint8), batch size and process independence, grayscale and
conditional networks, the grid, and one-line errors with exit code 2."""

import copy
import os
import pickle
import subprocess
import sys

import click
import numpy as np
import PIL.Image
import pytest
import torch

import generate
from dnnlib.cli import parse_range
from tests.cli_helpers import run_command
from training import networks_stylegan2 as net

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#----------------------------------------------------------------------------

def make_snapshot(path, c_dim=0, img_channels=3):
    """Write a tiny 16 px snapshot in the training loop's format; return its G_ema. Noise strengths and w_avg are
    set away from their zero init so that --noise-mode and --trunc change the images."""
    torch.manual_seed(c_dim * 10 + img_channels)
    G = net.Generator(z_dim=8, c_dim=c_dim, w_dim=8, img_resolution=16, img_channels=img_channels,
        mapping_kwargs=dict(num_layers=2), channel_base=256, channel_max=16)
    D = net.Discriminator(c_dim=c_dim, img_resolution=16, img_channels=img_channels, channel_base=256, channel_max=16)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    for name, p in G_ema.named_parameters():
        if name.endswith('noise_strength'):
            p.fill_(0.5)
    G_ema.mapping.w_avg.copy_(torch.randn([8]))
    data = dict(G=G, D=D, G_ema=G_ema, augment_pipe=None, training_set_kwargs=dict(resolution=16, use_labels=c_dim > 0))
    with open(path, 'wb') as f:
        pickle.dump(data, f)
    return G_ema

def reference_pixels(G, seed, class_idx=None, trunc=1, noise_mode='const'):
    """One image by the formula of the official tools, written out independently of generate.py."""
    z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim))
    label = torch.zeros([1, G.c_dim])
    if class_idx is not None:
        label[0, class_idx] = 1
    with torch.no_grad():
        img = G(z, label, truncation_psi=trunc, noise_mode=noise_mode)
    return (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].numpy()

def assert_same_pixels(actual, expected):
    """Images of the same seeds from batches of other sizes: equal up to float32 rounding. ATen blocks its kernels by
    batch size, so a value within ~1e-6 of a rounding boundary may round to the neighbouring level; measured under
    ATEN_CPU_CAPABILITY=default: 1 pixel of 768 and 1 of 3840, by 1 level (AVX2: none). Allowed: 1 level, in at most
    1% of the values; another seed, truncation or noise mode differs by tens of levels in most pixels."""
    diff = np.abs(actual.astype(np.int16) - expected.astype(np.int16))
    assert actual.shape == expected.shape and diff.max() <= 1 and np.count_nonzero(diff) <= 0.01 * diff.size, (diff.max(), np.count_nonzero(diff))

def read_png(path):
    with PIL.Image.open(path) as image:
        return image.mode, np.array(image)

def run_generate(capsys, *args):
    """Run generate.py's command line in-process; return (exit code, stderr lines)."""
    code, _out, err = run_command(capsys, generate.main, 'generate.py', *args)
    return code, err

@pytest.fixture(autouse=True)
def cpu_only(monkeypatch):
    # generate.py takes the GPU when there is one; pin it to the CPU, where the references below are computed,
    # so that the comparisons can be exact (cuDNN may pick other kernels, and TF32, for other batch sizes).
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)

@pytest.fixture(scope='module')
def snapshots(tmp_path_factory):
    root = tmp_path_factory.mktemp('snapshots')
    paths = dict(rgb=str(root / 'rgb.pkl'), gray_cond=str(root / 'gray_cond.pkl'))
    nets = dict(rgb=make_snapshot(paths['rgb']), gray_cond=make_snapshot(paths['gray_cond'], c_dim=3, img_channels=1))
    return paths, nets

#----------------------------------------------------------------------------

@pytest.mark.parametrize('trunc,noise_mode', [(1, 'const'), (0.7, 'const'), (1, 'none')])
def test_images_match_reference(snapshots, tmp_path, capsys, trunc, noise_mode):
    paths, nets = snapshots
    outdir = str(tmp_path / 'out')
    code, err = run_generate(capsys, f'--network={paths["rgb"]}', '--seeds=0-2,7', f'--trunc={trunc}', f'--noise-mode={noise_mode}', '--batch=3', f'--outdir={outdir}')
    assert code == 0, err
    assert sorted(os.listdir(outdir)) == ['seed0000.png', 'seed0001.png', 'seed0002.png', 'seed0007.png']
    for seed in [0, 1, 2, 7]:
        mode, pixels = read_png(os.path.join(outdir, f'seed{seed:04d}.png'))
        assert mode == 'RGB' and pixels.shape == (16, 16, 3)
        assert_same_pixels(pixels, reference_pixels(nets['rgb'], seed, trunc=trunc, noise_mode=noise_mode))

def test_options_change_images(snapshots):
    # Guards the reference test: truncation, noise mode and seed each reach the network.
    G = snapshots[1]['rgb']
    base = reference_pixels(G, 0)
    assert not np.array_equal(base, reference_pixels(G, 0, trunc=0.5))
    assert not np.array_equal(base, reference_pixels(G, 0, noise_mode='none'))
    assert not np.array_equal(base, reference_pixels(G, 1))

def test_batch_size_does_not_change_pixels(snapshots):
    G = snapshots[1]['rgb']
    seeds = [5, 0, 3, 11, 2]
    one_by_one = np.concatenate([images for _, images in generate.generate_images(G, seeds, truncation_psi=0.8, batch_size=1)])
    batches = list(generate.generate_images(G, seeds, truncation_psi=0.8, batch_size=2))
    assert [s for batch_seeds, _ in batches for s in batch_seeds] == seeds
    assert [len(images) for _, images in batches] == [2, 2, 1]
    assert_same_pixels(np.concatenate([images for _, images in batches]), one_by_one)
    assert_same_pixels(one_by_one[3], reference_pixels(G, 11, trunc=0.8))

def test_conditional_grayscale(snapshots, tmp_path, capsys):
    paths, nets = snapshots
    G = nets['gray_cond']
    for class_idx in [0, 2]:
        outdir = str(tmp_path / f'class{class_idx}')
        code, err = run_generate(capsys, f'--network={paths["gray_cond"]}', '--seeds=4,1', f'--class={class_idx}', f'--outdir={outdir}')
        assert code == 0, err
        for seed in [4, 1]:
            mode, pixels = read_png(os.path.join(outdir, f'seed{seed:04d}.png'))
            assert mode == 'L' and pixels.shape == (16, 16)
            np.testing.assert_array_equal(pixels, reference_pixels(G, seed, class_idx=class_idx)[:, :, 0])
    assert not np.array_equal(read_png(tmp_path / 'class0' / 'seed0004.png')[1], read_png(tmp_path / 'class2' / 'seed0004.png')[1])

def test_grid(snapshots, tmp_path, capsys):
    paths, _ = snapshots
    outdir = tmp_path / 'out'
    code, err = run_generate(capsys, f'--network={paths["rgb"]}', '--seeds=3-7', '--grid', '--batch=2', f'--outdir={outdir}')
    assert code == 0, err
    mode, grid = read_png(outdir / 'grid.png')
    assert mode == 'RGB' and grid.shape == (2 * 16, 3 * 16, 3) # 5 images: 3 per row, 2 rows
    for i, seed in enumerate(range(3, 8)):
        row, col = divmod(i, 3)
        np.testing.assert_array_equal(grid[row * 16 : (row + 1) * 16, col * 16 : (col + 1) * 16], read_png(outdir / f'seed{seed:04d}.png')[1])
    assert (grid[16:, 32:] == 0).all()

def test_user_errors(snapshots, tmp_path, capsys):
    paths, _ = snapshots
    outdir = tmp_path / 'out'
    not_a_pickle = tmp_path / 'notes.txt'
    not_a_pickle.write_text('hello')
    cases = [
        ([f'--network={paths["gray_cond"]}', '--seeds=0'], '--class is required'),
        ([f'--network={paths["gray_cond"]}', '--seeds=0', '--class=3'], '--class=3: out of range'),
        ([f'--network={paths["gray_cond"]}', '--seeds=0', '--class=-1'], '--class=-1: out of range'),
        ([f'--network={paths["rgb"]}', '--seeds=0', '--class=0'], 'unconditional'),
        ([f'--network={paths["rgb"]}', '--seeds=3-1'], "'--seeds'"),
        ([f'--network={paths["rgb"]}', '--seeds=zero'], "'--seeds'"),
        ([f'--network={paths["rgb"]}', '--seeds=0', '--batch=0'], "'--batch'"),
        ([f'--network={paths["rgb"]}', '--seeds=0', '--noise-mode=loud'], "'--noise-mode'"),
        ([f'--network={tmp_path / "missing.pkl"}', '--seeds=0'], 'missing.pkl'),
        ([f'--network={not_a_pickle}', '--seeds=0'], 'notes.txt'),
        ([f'--network={paths["rgb"]}', '--seeds=0', '--translate=0.1,0'], '--translate/--rotate: training.networks_stylegan2.Generator'),
        ([f'--network={paths["rgb"]}', '--seeds=0', '--rotate=10'], 'StyleGAN3 generators only'),
        ([f'--network={paths["rgb"]}', '--seeds=0', '--translate=0.1'], "'--translate'"),
    ]
    for args, expected in cases:
        code, err = run_generate(capsys, *args, f'--outdir={outdir}')
        assert code == 2, args
        assert len(err) == 1 and err[0].startswith('generate.py: error: ') and expected in err[0], (args, err)
        assert not outdir.exists(), args

@pytest.mark.slow('a fresh Python process imports torch and loads a pickle')
def test_subprocess(snapshots, tmp_path):
    # A fresh process gives the same pixels as this one, and a bad option exits with code 2 and one line.
    paths, nets = snapshots
    outdir = tmp_path / 'out'
    cmd = [sys.executable, os.path.join(REPO_ROOT, 'generate.py'), f'--network={paths["rgb"]}', '--seeds=9', f'--outdir={outdir}']
    env = dict(os.environ, OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='')
    result = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(read_png(outdir / 'seed0009.png')[1], reference_pixels(nets['rgb'], 9))
    result = subprocess.run(cmd + ['--class=1'], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ['generate.py: error: --class=1: the network is unconditional; leave --class out']

#----------------------------------------------------------------------------

def test_parse_range():
    assert parse_range('0-3,200') == [0, 1, 2, 3, 200]
    assert parse_range('7') == [7]
    assert parse_range(' 5 - 6 , 1,1') == [5, 6, 1, 1]
    assert parse_range('4-4') == [4]
    for bad in ['', ' ', 'a', '1,,2', '-1', '1-', '3-1', '1.5', '0-2-4', '1;2']:
        with pytest.raises(click.BadParameter):
            parse_range(bad)
    with pytest.raises(click.BadParameter, match='too large'):
        parse_range('0-99999999999', max_value=2**32 - 1)
    assert parse_range('4294967295', max_value=2**32 - 1) == [2**32 - 1]

#----------------------------------------------------------------------------

#----------------------------------------------------------------------------

def test_demo_checkpoint(tmp_path, capsys):
    # The demo snapshot trained by the quickstart (checkpoints/): one grayscale PNG per seed, the official formula.
    pkl = os.path.join(REPO_ROOT, 'checkpoints', 'demo-digits32-100kimg.pkl')
    code, err = run_generate(capsys, '--network', pkl, '--seeds', '0-2', '--outdir', tmp_path / 'out')
    assert code == 0, err
    assert sorted(os.listdir(tmp_path / 'out')) == ['seed0000.png', 'seed0001.png', 'seed0002.png']
    with open(pkl, 'rb') as f:
        G = pickle.load(f)['G_ema']
    for seed in range(3):
        mode, pixels = read_png(tmp_path / 'out' / f'seed{seed:04d}.png')
        assert mode == 'L' and pixels.shape == (32, 32)
        np.testing.assert_array_equal(pixels, reference_pixels(G, seed)[:, :, 0])

#----------------------------------------------------------------------------

def test_stylegan3_translate_rotate(tmp_path, capsys):
    # A StyleGAN3 snapshot: --translate X,Y --rotate DEG sets the inverse of [[cos, sin, X], [-sin, cos, Y]] (NVIDIA's
    # gen_images.py) as the input transform, written out here; without them the images are the plain ones.
    from training import networks_stylegan3
    torch.manual_seed(0)
    G = networks_stylegan3.Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, channel_base=256, channel_max=8).eval().requires_grad_(False)
    path = tmp_path / 'sg3.pkl'
    with open(path, 'wb') as f:
        pickle.dump(dict(G=G, D=None, G_ema=G, augment_pipe=None, training_set_kwargs=None), f)
    angle = np.radians(20)
    m = np.array([[np.cos(angle), np.sin(angle), 0.25], [-np.sin(angle), np.cos(angle), -0.1], [0, 0, 1]])
    for args, transform in [([], np.eye(3)), (['--translate=0.25,-0.1', '--rotate=20'], np.linalg.inv(m))]:
        outdir = tmp_path / f'out{len(args)}'
        code, err = run_generate(capsys, f'--network={path}', '--seeds=3', f'--outdir={outdir}', *args)
        assert code == 0, err
        G.synthesis.input.transform.copy_(torch.from_numpy(transform))
        _mode, pixels = read_png(outdir / 'seed0003.png')
        np.testing.assert_array_equal(pixels, reference_pixels(G, 3))
    assert not np.array_equal(read_png(tmp_path / 'out0' / 'seed0003.png')[1], read_png(tmp_path / 'out2' / 'seed0003.png')[1])

"""Tests of interpolation.py: the strip equals the generator's images for labels and latents computed here, the ends
are the two classes' images, the latent path is a slerp, the video reads back with its frame count and size, the
same arguments give the same files (random choices included, through the printed --seed), and bad input is one line
with nothing written."""

import os

import imageio
import numpy as np
import PIL.Image
import pytest
import torch

import interpolation
from tests.cli_helpers import run_command
from tests.metrics.helpers import digits_kwargs, tiny_generator, write_snapshot

#----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def conditional_pkl(tmp_path_factory):
    G = tiny_generator(img_channels=1, c_dim=4, resolution=16)
    return write_snapshot(tmp_path_factory.mktemp('net') / 'snapshot.pkl', G, digits_kwargs(resolution=16, use_labels=True)), G

def run_interpolation(capsys, *args):
    return run_command(capsys, interpolation.main, 'interpolation.py', *args)

def images_of(G, z, c):
    img = G(torch.from_numpy(z).float(), torch.from_numpy(c).float(), noise_mode='const')
    return (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)[:, :, :, 0].numpy()

def read_png(path):
    with PIL.Image.open(path) as image:
        return np.array(image)

#----------------------------------------------------------------------------

def test_strip_with_fixed_latent(tmp_path, capsys, conditional_pkl):
    pkl, G = conditional_pkl
    code, out, err = run_interpolation(capsys, f'--network={pkl}', f'--outdir={tmp_path}', '--classes=1,3', '--seeds=5', '--steps=4')
    assert code == 0, err
    strip = read_png(tmp_path / 'interp-class1to3-seed5.png')
    labels = np.zeros([4, 4])
    for i, t in enumerate([0, 1 / 3, 2 / 3, 1]):
        labels[i, 1], labels[i, 3] = 1 - t, t
    z = np.repeat(np.random.RandomState(5).randn(1, 8), 4, axis=0)
    assert strip.shape == (16, 64)
    np.testing.assert_array_equal(strip, np.concatenate(list(images_of(G, z, labels)), axis=1))
    # The ends are the two classes' own images, as generate.py --class makes them.
    ends = images_of(G, z[:2], np.eye(4)[[1, 3]])
    np.testing.assert_array_equal(strip[:, :16], ends[0])
    np.testing.assert_array_equal(strip[:, -16:], ends[1])
    assert not np.array_equal(ends[0], ends[1])

def test_latent_slerp(tmp_path, capsys, conditional_pkl):
    # The latent turns from z(5) to z(9) at a constant angular speed, in their plane. (The mapping network normalizes
    # z, so only the direction counts: compared within one level of rounding.)
    pkl, G = conditional_pkl
    code, _out, err = run_interpolation(capsys, f'--network={pkl}', f'--outdir={tmp_path}', '--classes=2,0', '--seeds=5,9', '--steps=4')
    assert code == 0, err
    strip = read_png(tmp_path / 'interp-class2to0-seed5-9.png')
    z0, z1 = np.random.RandomState(5).randn(8), np.random.RandomState(9).randn(8)
    u = z0 / np.linalg.norm(z0)
    v = z1 - (z1 @ u) * u
    v /= np.linalg.norm(v)
    theta = np.arctan2(z1 @ v, z1 @ u)
    t = np.array([0, 1 / 3, 2 / 3, 1])
    directions = np.cos(t * theta)[:, None] * u + np.sin(t * theta)[:, None] * v
    labels = np.zeros([4, 4])
    labels[:, 2], labels[:, 0] = 1 - t, t
    expected = np.concatenate(list(images_of(G, directions, labels)), axis=1)
    assert np.abs(strip.astype(int) - expected).max() <= 1
    lerp = np.concatenate(list(images_of(G, (1 - t)[:, None] * z0 + t[:, None] * z1, labels)), axis=1)
    assert np.abs(strip.astype(int) - lerp).max() > 1 # the straight line would pass elsewhere

def test_video_and_random_choices_repeat(tmp_path, capsys, conditional_pkl):
    pkl, _G = conditional_pkl
    code, out, err = run_interpolation(capsys, f'--network={pkl}', f'--outdir={tmp_path / "a"}', '--latent=interp', '--video', '--frames=6', '--fps=5')
    assert code == 0, err
    [line] = [line for line in out if line.startswith('Random choices from --seed=')]
    seed = int(line.split('=')[1])
    [video] = [name for name in os.listdir(tmp_path / 'a') if name.endswith('.mp4')]
    with imageio.get_reader(tmp_path / 'a' / video) as reader:
        frames = [frame for frame in reader]
    assert len(frames) == 6 and frames[0].shape == (16, 16, 3)
    # The printed seed makes the same files again.
    code, out, err = run_interpolation(capsys, f'--network={pkl}', f'--outdir={tmp_path / "b"}', '--latent=interp', '--video', '--frames=6', '--fps=5', f'--seed={seed}')
    assert code == 0, err
    assert sorted(os.listdir(tmp_path / 'a')) == sorted(os.listdir(tmp_path / 'b'))
    for name in os.listdir(tmp_path / 'a'):
        assert (tmp_path / 'a' / name).read_bytes() == (tmp_path / 'b' / name).read_bytes(), name

def test_bad_input(tmp_path, capsys, conditional_pkl):
    pkl, _G = conditional_pkl
    unconditional = write_snapshot(tmp_path / 'uncond.pkl', tiny_generator(img_channels=1, resolution=16), digits_kwargs(resolution=16))
    out = tmp_path / 'out'
    cases = [
        ([f'--network={unconditional}'], 'the network is unconditional; interpolating between classes needs 2 or more'),
        ([f'--network={pkl}', '--classes=2,2'], '--classes=2,2: expected two different classes from 0 to 3'),
        ([f'--network={pkl}', '--classes=1,4'], '--classes=1,4: expected two different classes from 0 to 3'),
        ([f'--network={pkl}', '--seeds=1,2,3'], "'--seeds'"),
        ([f'--network={pkl}', '--classes=a,b'], "'--classes'"),
        ([f'--network={pkl}', '--steps=1'], "'--steps'"),
        ([f'--network={tmp_path / "missing.pkl"}'], 'missing.pkl'),
    ]
    for args, words in cases:
        code, _out, err = run_interpolation(capsys, *args, f'--outdir={out}')
        assert code == 2 and len(err) == 1 and words in err[0], (args, err)
        assert not out.exists(), args

#----------------------------------------------------------------------------

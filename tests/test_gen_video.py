"""Tests of gen_video.py: the interpolation (through every keyframe, periodic, linear midpoints), the seed layout,
an mp4 read back with imageio (frame count, size, keyframe frames close to the generator's images; H.264 is lossy),
and one-line errors for bad input with nothing written."""

import imageio
import numpy as np
import torch

import gen_video
from tests.cli_helpers import run_command
from tests.metrics.helpers import digits_kwargs, tiny_generator, write_snapshot
from tests.test_style_mixing import _NoStyles

#----------------------------------------------------------------------------

def run_gen_video(capsys, *args):
    return run_command(capsys, gen_video.main, 'gen_video.py', *args)

def test_interpolation_passes_keyframes_and_loops():
    rnd = np.random.RandomState(0)
    ws = rnd.randn(1, 2, 3, 4, 5) # [grid_h, grid_w, keyframes, num_ws, w_dim]
    for kind in ['cubic', 'linear']:
        grid = gen_video.interpolators(ws, kind=kind)
        for x in range(2):
            for k in range(3):
                np.testing.assert_allclose(grid[0][x](k), ws[0, x, k], atol=1e-12)
                np.testing.assert_allclose(grid[0][x](k + 3), ws[0, x, k], atol=1e-12) # periodic: the video loops
    linear = gen_video.interpolators(ws, kind='linear')
    np.testing.assert_allclose(linear[0][1](1.25), 0.75 * ws[0, 1, 1] + 0.25 * ws[0, 1, 2], atol=1e-12)
    np.testing.assert_allclose(linear[0][1](2.5), 0.5 * ws[0, 1, 2] + 0.5 * ws[0, 1, 0], atol=1e-12) # wraps to the first

def test_keyframe_seeds_layout():
    seeds = gen_video.keyframe_seeds(list(range(10, 16)), grid=(3, 1), num_keyframes=None, shuffle_seed=None)
    assert seeds.tolist() == [[[10, 11], [12, 13], [14, 15]]]
    assert gen_video.keyframe_seeds([1, 2], grid=(1, 1), num_keyframes=5, shuffle_seed=None).tolist() == [[[1, 2, 1, 2, 1]]]

def test_video_file(tmp_path, capsys):
    G = tiny_generator(img_channels=1, resolution=16)
    pkl = write_snapshot(tmp_path / 'snapshot.pkl', G, digits_kwargs(resolution=16))
    output = tmp_path / 'lerp.mp4'
    code, _out, err = run_gen_video(capsys, '--network', pkl, '--seeds=3-8', '--grid=3x1', '--w-frames=4', '--output', output)
    assert code == 0 and err == [], err
    frames = [frame for frame in imageio.v2.get_reader(str(output))]
    assert len(frames) == 2 * 4 and frames[0].shape == (16, 48, 3)
    # At frame k * w_frames each cell shows its k-th keyframe: seeds 3,4 | 5,6 | 7,8. H.264 is lossy (a few levels
    # on these noisy 16x16 images), so each such cell must be far closer to its own seed's image than to the others.
    with torch.no_grad():
        images = {seed: (G(torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim)), torch.zeros([1, 0]), noise_mode='const')[0, 0] * 127.5 + 128).clamp(0, 255).numpy()
                  for seed in range(3, 9)}
    for k in range(2):
        for x in range(3):
            cell = frames[k * 4][:, 16 * x : 16 * (x + 1), 0].astype(np.float64)
            distances = {seed: np.abs(cell - image).mean() for seed, image in images.items()}
            assert min(distances, key=distances.get) == 3 + 2 * x + k and distances[3 + 2 * x + k] < 12, (k, x, distances)
    assert not list(tmp_path.glob('*.partial.mp4'))

def test_one_keyframe_per_cell_is_a_still(tmp_path, capsys):
    # As StyleGAN3's gen_video.py: --seeds=0-1 --grid=2x1 gives each cell one keyframe, a still video of w_frames
    # frames in which every frame shows each cell's seed (the spline through 5 copies of one point is constant).
    G = tiny_generator(img_channels=1, resolution=16)
    pkl = write_snapshot(tmp_path / 'snapshot.pkl', G, digits_kwargs(resolution=16))
    seeds = gen_video.keyframe_seeds([5, 6], grid=(2, 1), num_keyframes=None, shuffle_seed=None)
    frames = list(gen_video.render_frames(G, seeds, w_frames=3))
    with torch.no_grad():
        images = [(G(torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim)).float(), torch.zeros([1, 0]), noise_mode='const')[0, 0] * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy() for seed in [5, 6]]
    assert len(frames) == 3
    for frame in frames:
        np.testing.assert_allclose(frame[:, :16, 0], images[0], atol=1)   # float32 rounding of w through the spline
        np.testing.assert_allclose(frame[:, 16:, 0], images[1], atol=1)
    output = tmp_path / 'still.mp4'
    code, _out, err = run_gen_video(capsys, '--network', pkl, '--seeds=5-6', '--grid=2x1', '--w-frames=3', '--output', output)
    assert code == 0 and err == [], err
    assert len([frame for frame in imageio.v2.get_reader(str(output))]) == 3

def test_bad_input(tmp_path, capsys):
    pkl = write_snapshot(tmp_path / 'snapshot.pkl', tiny_generator(img_channels=1, resolution=16), digits_kwargs(resolution=16))
    nostyles = write_snapshot(tmp_path / 'nostyles.pkl', _NoStyles(), digits_kwargs())
    cases = [
        ([f'--network={pkl}', '--seeds=0-4', '--grid=2x1'], '5 seeds do not fill a 2x1 grid'),
        ([f'--network={pkl}', '--seeds=0-3', '--grid=2'], '--grid'),
        ([f'--network={nostyles}', '--seeds=0-1'], 'has no mapping network with per-layer styles'),
        ([f'--network={pkl}', '--seeds=0-1', '--output=video.avi'], 'expected an .mp4'),
    ]
    for args, words in cases:
        if not any(arg.startswith('--output') for arg in args):
            args = args + [f'--output={tmp_path / "out.mp4"}']
        code, _out, err = run_gen_video(capsys, *args)
        assert code == 2 and len(err) == 1 and err[0].startswith('gen_video.py: error: ') and words in err[0], (args, err)
        assert not list(tmp_path.glob('*.mp4')) and not list(tmp_path.glob('*.avi'))

#----------------------------------------------------------------------------

"""Tests of style_mixing.py: every cell of the grid against images made by hand from the mixed styles (through the
generator's own truncation and synthesis), the grid layout, and one-line errors for bad input."""


import numpy as np
import PIL.Image
import pytest
import torch

import style_mixing
from tests.cli_helpers import run_command
from tests.metrics.helpers import digits_kwargs, tiny_generator, write_snapshot

#----------------------------------------------------------------------------

def run_style_mixing(capsys, *args):
    return run_command(capsys, style_mixing.main, 'style_mixing.py', *args)

def hand_image(G, row_seed, col_seed, styles, psi, label):
    """The cell written out: each seed's ws through G.mapping's own truncation, layer by layer from row or column."""
    ws = {seed: G.mapping(torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim)), label, truncation_psi=psi)[0] for seed in [row_seed, col_seed]}
    mixed = torch.stack([ws[col_seed][layer] if layer in styles else ws[row_seed][layer] for layer in range(G.num_ws)])
    img = G.synthesis(mixed[None], noise_mode='const')
    return (img[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()

def read_png(path):
    with PIL.Image.open(path) as image:
        array = np.array(image)
    return array[:, :, None] if array.ndim == 2 else array

@pytest.mark.parametrize('c_dim', [0, 3])
def test_grid_matches_hand_made_images(tmp_path, capsys, c_dim):
    G = tiny_generator(img_channels=1, c_dim=c_dim)
    pkl = write_snapshot(tmp_path / 'snapshot.pkl', G, digits_kwargs())
    outdir = tmp_path / 'out'
    rows, cols, styles, psi = [5, 2], [7, 1, 9], [1, 3], 0.7
    extra = ['--class=2'] if c_dim else []
    code, _out, err = run_style_mixing(capsys, '--network', pkl, '--rows=5,2', '--cols=7,1,9', '--styles=1,3', '--trunc=0.7', '--outdir', outdir, *extra)
    assert code == 0 and err == [], err
    label = torch.zeros([1, c_dim])
    if c_dim:
        label[0, 2] = 1
    h = w = G.img_resolution
    grid = read_png(outdir / 'grid.png')
    assert grid.shape == (h * 3, w * 4, 1) and not grid[:h, :w].any()
    with torch.no_grad():
        for i, row in enumerate(rows):
            assert np.array_equal(read_png(outdir / f'{row}-{row}.png'), hand_image(G, row, row, styles, psi, label))
            assert np.array_equal(grid[h * (i + 1) : h * (i + 2), :w], read_png(outdir / f'{row}-{row}.png'))
            for j, col in enumerate(cols):
                cell = read_png(outdir / f'{row}-{col}.png')
                assert np.array_equal(cell, hand_image(G, row, col, styles, psi, label)), (row, col)
                assert np.array_equal(grid[h * (i + 1) : h * (i + 2), w * (j + 1) : w * (j + 2)], cell)
        for j, col in enumerate(cols):
            assert np.array_equal(grid[:h, w * (j + 1) : w * (j + 2)], hand_image(G, col, col, styles, psi, label))
    # Mixing changes the image where the styles differ: not every cell equals its row image.
    assert any(not np.array_equal(read_png(outdir / f'{row}-{col}.png'), read_png(outdir / f'{row}-{row}.png')) for row in rows for col in cols)

class _NoStyles(torch.nn.Module):
    """A generator without a mapping network (as DCGAN's)."""
    def __init__(self):
        super().__init__()
        self.z_dim, self.c_dim, self.img_resolution, self.img_channels = 4, 0, 8, 1
        self.fc = torch.nn.Linear(4, 64)
    def forward(self, z, c, **kwargs):
        return self.fc(z.float()).reshape(-1, 1, 8, 8)

def test_bad_input(tmp_path, capsys):
    pkl = write_snapshot(tmp_path / 'snapshot.pkl', tiny_generator(img_channels=1), digits_kwargs())
    cond = write_snapshot(tmp_path / 'cond.pkl', tiny_generator(img_channels=1, c_dim=3), digits_kwargs())
    nostyles = write_snapshot(tmp_path / 'nostyles.pkl', _NoStyles(), digits_kwargs())
    num_ws = tiny_generator(img_channels=1).num_ws
    cases = [
        ([f'--network={pkl}', f'--styles=0-{num_ws}'], f'--styles: layer {num_ws} does not exist; the network has {num_ws} style layers'),
        ([f'--network={cond}'], '--class is required'),
        ([f'--network={nostyles}'], 'has no mapping network with per-layer styles'),
        ([f'--network={pkl}', '--styles=a-b'], '--styles'),
    ]
    for args, words in cases:
        outdir = tmp_path / 'out'
        code, _out, err = run_style_mixing(capsys, *args, '--rows=1', '--cols=2', f'--outdir={outdir}')
        assert code == 2 and len(err) == 1 and err[0].startswith('style_mixing.py: error: ') and words in err[0], (args, err)
        assert not outdir.exists()

#----------------------------------------------------------------------------

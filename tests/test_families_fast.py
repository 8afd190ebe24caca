"""The fast tier's check of every family: each preset of configs/ (and each overlay over the demo) builds its
networks at 16-32 px with tiny widths, takes one training step on the built-in digits and writes a snapshot that
loads back and generates. The slow tests go further (several ticks, exact resume, fresh processes, several ranks)."""

import glob
import os

import numpy as np
import pytest
import torch

import legacy
from tests.test_train import tiny_config
from training import presets
from training import training_loop

CASES = [(cfg, []) for cfg in presets.preset_names()] + [('demo', [f'--{name}'] + (['--cond', '1'] if name == 'dudgan' else [])) for name in presets.overlay_names()]

#----------------------------------------------------------------------------

@pytest.mark.parametrize('cfg,args', CASES, ids=[' '.join([cfg, *args]) for cfg, args in CASES])
def test_one_step_snapshot_and_generate(tmp_path, cfg, args):
    c = tiny_config(tmp_path / 'run', cfg, args, total_kimg=0.008, kimg_per_tick=0.008, image_snapshot_ticks=None)
    training_loop.training_loop(**c)
    snapshots = glob.glob(os.path.join(c.run_dir, 'network-snapshot-*.pkl'))
    assert len(snapshots) == 1
    with open(snapshots[0], 'rb') as f:
        data = legacy.load_network_pkl(f)
    G = data['G_ema']
    z = torch.randn([2, G.z_dim], generator=torch.Generator().manual_seed(0))
    cond = torch.zeros([2, G.c_dim])
    if G.c_dim:
        cond[:, 0] = 1
    with torch.no_grad():
        img = G(z, cond)
    assert img.shape[0] == 2 and img.shape[1] == G.img_channels and np.isfinite(img.numpy()).all()
    assert all(np.isfinite(p.detach().numpy()).all() for name in ['G', 'D'] if data.get(name) is not None for p in data[name].parameters())

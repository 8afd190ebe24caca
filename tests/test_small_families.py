"""The small comparison families end to end, as the StyleGAN2 tests do it: DCGAN with and without the diffusion,
DifGAN (with and without), the high-dimensional GAN. Each trains a few ticks on the digits at 16 px, its snapshot
loads in a fresh process without our training package, generate.py renders its seeds (DifGAN also its steps),
calc_metrics.py scores it, and benchmarks/fid_curves.py draws the scores. Exact resume: tests/test_resume.py."""

import csv
import json
import os
import pickle

import numpy as np
import PIL.Image
import pytest
import torch

import calc_metrics
import generate
import train
from benchmarks import fid_curves
from tests.cli_helpers import run_command
from tests.metrics.helpers import use_fake_detectors
from tests.test_legacy import assert_seed_pngs
from tests.test_train import load_in_fresh_process, parse_opts, tiny_config, write_pngs
from training import training_loop

FAMILIES = [('dcgan_demo', []), ('dcgan_demo', ['--no-diffusion']), ('difgan', []), ('difgan', ['--diffusion', '--steps', '3', '--eta', 'linear']), ('hdgan', [])]

#----------------------------------------------------------------------------

def train_tiny(root, cfg, args):
    run_dir = root / f'00000-{cfg}'
    training_loop.training_loop(**tiny_config(run_dir, cfg=cfg, args=args, image_snapshot_ticks=None))
    return run_dir

@pytest.mark.parametrize('cfg,args', FAMILIES)
@pytest.mark.slow('trainings of several ticks, then generate.py')
def test_trains_snapshots_and_generates(tmp_path, capsys, cfg, args):
    run_dir = train_tiny(tmp_path, cfg, args)
    diffusion = '--diffusion' in args or (cfg == 'dcgan_demo' and '--no-diffusion' not in args)
    with open(run_dir / 'stats.jsonl') as f:
        ticks = [json.loads(line) for line in f]
    for key in ['Loss/G/loss', 'Loss/D/loss', 'Loss/signs/real', 'Loss/scores/fake']:
        assert np.isfinite(ticks[-1][key]['mean']), key
    assert ('Progress/diffusion_p' in ticks[-1] and ticks[-1]['Progress/diffusion_p']['mean'] > 0) == diffusion
    snapshot = run_dir / 'network-snapshot-000000.pkl'
    with open(snapshot, 'rb') as f:
        data = pickle.load(f)
    assert data['family'] == {'dcgan_demo': 'dcgan'}.get(cfg, cfg)
    assert data['D'].t_aware == diffusion
    G = data['G_ema']
    if cfg != 'dcgan_demo':
        assert G.steps == (3 if '--steps' in args else 4 if cfg == 'difgan' else 1) and G.z_dim == 16 * 16
    # G_ema is G (ema 0), in eval mode; a fresh process without our training package renders the same images.
    for a, b in zip(G.parameters(), data['G'].parameters()):
        assert torch.equal(a, b)
    result = load_in_fresh_process(str(snapshot), tmp_path / 'fresh')
    z = torch.from_numpy(np.random.RandomState(7).randn(4, G.z_dim)).float()
    assert torch.equal(result['img'], G(z, torch.zeros([4, 0])))

    outdir = tmp_path / 'out'
    code, _out, err = run_command(capsys, generate.main, 'generate.py', f'--network={snapshot}', '--seeds=0-2', f'--outdir={outdir}', *(['--intermediates'] if cfg != 'dcgan_demo' else []))
    assert code == 0, err
    assert_seed_pngs(outdir, G, [0, 1, 2], torch.zeros([1, 0]))
    if cfg != 'dcgan_demo':
        # A row per seed: z_T (the latent, clipped) .. z_0, z_0 being the seed's image.
        with PIL.Image.open(outdir / 'intermediates.png') as image:
            grid = np.array(image)
        assert grid.shape == (3 * 16, (G.steps + 1) * 16)
        for row, seed in enumerate([0, 1, 2]):
            z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim)).float()
            steps = G(z, torch.zeros([1, 0]), return_steps=True)[0]
            for col in range(G.steps + 1):
                expected = (steps[col, 0] * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()
                np.testing.assert_array_equal(grid[row * 16:(row + 1) * 16, col * 16:(col + 1) * 16], expected)
        with PIL.Image.open(outdir / 'seed0001.png') as image:
            np.testing.assert_array_equal(np.array(image), grid[16:32, -16:])

@pytest.mark.parametrize('args,words', [(['--trunc=0.7'], '--trunc=0.7: the Generator of --network='), (['--intermediates'], '--intermediates: --network=')])
def test_generate_refuses_what_dcgan_lacks(tmp_path, capsys, args, words):
    run_dir = train_tiny(tmp_path, 'dcgan_demo', ['--kimg', '0.016'])
    outdir = tmp_path / 'out'
    code, _out, err = run_command(capsys, generate.main, 'generate.py', f'--network={run_dir / "network-snapshot-000000.pkl"}', '--seeds=0', f'--outdir={outdir}', *args)
    assert code == 2 and len(err) == 1 and err[0].startswith('generate.py: error: ') and words in err[0], err
    assert not outdir.exists()

def test_dcgan_preset_is_the_studys(tmp_path):
    # The study's CIFAR-10 DCGAN at 64 px: nz 100, ngf = ndf = 64, batch 128, lr G 1.6e-4 / D 1.25e-4, Adam beta1
    # 0.5, 50 epochs; timestep-aware D only with the diffusion. DifGAN and HD-GAN: no diffusion unless asked.
    data = write_pngs(tmp_path / 'cifar64', [64] * 2)
    for args, diffusion in [([], True), (['--no-diffusion'], False)]:
        c, desc = train.build_config(parse_opts('--outdir', str(tmp_path / 'out'), '--data', data, '--cfg', 'dcgan', *args))
        assert (c.network_kwargs.G.z_dim, c.network_kwargs.G.ngf, c.network_kwargs.D.ndf, c.batch_size, c.total_kimg) == (100, 64, 64, 128, 2500)
        assert (c.opt_kwargs.G.lr, c.opt_kwargs.D.lr, c.opt_kwargs.G.betas, c.opt_kwargs.D.betas) == (0.00016, 0.000125, [0.5, 0.999], [0.5, 0.999])
        assert c.network_kwargs.D.t_aware == diffusion and (c.diffusion_kwargs is not None) == diffusion
        assert c.ema_kimg == 0 and c.reg_intervals == dict(G=None, D=None) and desc.endswith('-diffusion' if diffusion else '-nodiffusion')
        assert c.loss_kwargs.r1_gamma == 0 # DCGAN has no R1
    for cfg, args, diffusion in [('difgan', [], False), ('difgan', ['--diffusion'], True), ('hdgan', [], False)]:
        c, desc = train.build_config(parse_opts('--outdir', str(tmp_path / 'out'), '--cfg', cfg, *args))
        assert c.network_kwargs.D.t_aware == diffusion and (c.diffusion_kwargs is not None) == diffusion and desc.endswith('-diffusion' if diffusion else '-nodiffusion')
        assert 'enabled' not in (c.diffusion_kwargs or {})
    assert c.network_kwargs.G.steps == 1 and c.network_kwargs.G.t_embed == 'none'

@pytest.mark.parametrize('cfg,default_gamma', [('difgan', 0.5), ('hdgan', 0), ('dcgan_demo', 0)])
def test_r1_defaults_and_gamma(cfg, default_gamma):
    # DifGAN regularizes D with lazy R1 (every 16 minibatches; without it, it collapsed on the digits); the one-step
    # models keep the unregularized D of DCGAN. --gamma sets it for each, --gamma=0 switches R1 and its interval off.
    for args, gamma in [([], default_gamma), (['--gamma', '0'], 0), (['--gamma', '2'], 2)]:
        c, desc = train.build_config(parse_opts('--outdir', 'unused', '--cfg', cfg, *args))
        assert c.loss_kwargs.r1_gamma == gamma and f'-gamma{gamma:g}-' in desc
        assert c.reg_intervals == dict(G=None, D=16 if gamma > 0 else None)

#----------------------------------------------------------------------------

@pytest.mark.slow('trainings of several ticks, then metrics and fid_curves.py')
def test_metrics_and_fid_curves(tmp_path, capsys, monkeypatch):
    # calc_metrics.py scores every snapshot of two runs (fake detectors); fid_curves.py reads their metric-*.jsonl
    # into a CSV of exactly those numbers and a PNG; a run without scores is one line.
    use_fake_detectors(monkeypatch, tmp_path)
    runs = []
    for cfg in ['dcgan_demo', 'hdgan']:
        run_dir = tmp_path / f'00000-{cfg}'
        training_loop.training_loop(**tiny_config(run_dir, cfg=cfg, image_snapshot_ticks=None, total_kimg=1.1, kimg_per_tick=0.5)) # snapshots 000000, 000001
        snapshots = sorted(name for name in os.listdir(run_dir) if name.endswith('.pkl'))
        assert len(snapshots) >= 2
        for name in snapshots:
            code, _out, err = run_command(capsys, calc_metrics.main, 'calc_metrics.py', '--network', run_dir / name, '--metrics', 'fid50k_full', '--num-gen', '16')
            assert code == 0, err
        runs.append(run_dir)
    # A snapshot scored again keeps its newest line.
    with open(runs[0] / 'metric-fid50k_full.jsonl') as f:
        first = json.loads(f.readline())
    with open(runs[0] / 'metric-fid50k_full.jsonl', 'a') as f:
        f.write(json.dumps(dict(first, results=dict(fid50k_full=123.5))) + '\n')
    out = tmp_path / 'plots' / 'curves'
    code, stdout, err = run_command(capsys, fid_curves.main, 'fid_curves.py', *runs, '--labels=DCGAN,HD-GAN', '--floor=3.5', f'--out={out}')
    assert code == 0, err
    result = json.loads(stdout[-1])
    with open(str(out) + '.csv') as f:
        rows = list(csv.reader(f))
    assert rows[0] == ['run', 'kimg', 'fid50k_full']
    for label, run_dir in zip(['DCGAN', 'HD-GAN'], runs):
        with open(run_dir / 'metric-fid50k_full.jsonl') as f:
            scored = [json.loads(line) for line in f]
        if label == 'DCGAN':
            assert scored[-1]['snapshot_pkl'] == scored[0]['snapshot_pkl']
            scored = [scored[-1]] + scored[1:-1]
        expected = [[label, str(int(entry['snapshot_pkl'][-10:-4])), str(entry['results']['fid50k_full'])] for entry in scored]
        assert [row for row in rows[1:] if row[0] == label] == expected
        assert [value for _, value in result['curves'][label]] == [entry['results']['fid50k_full'] for entry in scored]
    with PIL.Image.open(str(out) + '.png') as image:
        assert image.size == (700, 450)
    code, _stdout, err = run_command(capsys, fid_curves.main, 'fid_curves.py', str(runs[0]), str(tmp_path), f'--out={tmp_path / "x"}')
    assert code == 2 and len(err) == 1 and 'metric-fid50k_full.jsonl: no such file' in err[0], err
    assert not (tmp_path / 'x.csv').exists()

#----------------------------------------------------------------------------

@pytest.mark.slow('a 40-kimg training of the digits preset, about 5 minutes on 2 cores')
def test_conditional_dcgan_learns_labels(tmp_path):
    # The digits preset with labels, on the built-in digits at full size. G(z, c) draws class c for 0.20 / 0.18 of its
    # images at 20 kimg and 0.43 / 0.35 at 30 (seeds 0 and 1, measured), still rising; with the label concatenated to
    # z and projected in D at DCGAN's learning rates (before class-conditional batch norm and the label's
    # learning-rate multipliers) it stayed at chance, 0.10 to 0.12 after 60 kimg on real digits. At 40 kimg the
    # bound leaves room for a trajectory more than 10 kimg slower.
    run_dir = tmp_path / '00000-cond'
    c, _desc = train.build_config(parse_opts('--outdir', str(tmp_path), '--cfg', 'digits', '--cond', 'true', '--no-diffusion',
        '--kimg', '40', '--tick', '10', '--snap', '4', '--seed', '0', '--metrics', 'modes10k'))
    c.update(run_dir=str(run_dir), rank=0, progress_bar=False)
    os.makedirs(run_dir)
    training_loop.training_loop(**c)
    with open(run_dir / 'metric-modes10k.jsonl') as f:
        last = [json.loads(line) for line in f][-1]
    assert last['snapshot_pkl'] == 'network-snapshot-000040.pkl'
    assert last['results']['modes10k_cond_accuracy'] > 0.2, last['results']

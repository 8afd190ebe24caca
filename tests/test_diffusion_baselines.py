"""DDPM and DDGAN end to end, as tests/test_small_families.py does it for DCGAN: a few ticks on the digits at 16 px,
the snapshot in a fresh process without our training package, generate.py (--sample-steps, --sampler) and
calc_metrics.py; a run killed mid-snapshot and resumed equals the straight run; bad input is one line, exit 2."""

import csv
import json
import pickle

import numpy as np
import pytest
import torch

import calc_metrics
import generate
from benchmarks import sampling_tradeoff
from tests.cli_helpers import run_command
from tests.metrics.helpers import use_fake_detectors
from tests.test_legacy import assert_seed_pngs
from tests.test_resume import TOTAL_KIMG, assert_same_nest, assert_same_stats, assert_same_tensors, load_pkl, read_stats, straight_killed_resumed
from tests.test_train import load_in_fresh_process, tiny_config
from training import training_loop

#----------------------------------------------------------------------------

def train_tiny(root, cfg, **overrides):
    run_dir = root / f'00000-{cfg}'
    training_loop.training_loop(**tiny_config(run_dir, cfg=cfg, image_snapshot_ticks=None, **overrides))
    return run_dir / 'network-snapshot-000000.pkl'

@pytest.fixture(scope='module')
def snapshots(tmp_path_factory):
    root = tmp_path_factory.mktemp('baselines')
    return {cfg: train_tiny(root, cfg) for cfg in ['ddpm_demo', 'ddgan_demo']}

@pytest.mark.parametrize('cfg', ['ddpm_demo', 'ddgan_demo'])
@pytest.mark.slow('trainings of several ticks, then generate.py and calc_metrics.py')
def test_trains_snapshots_generates_and_scores(snapshots, tmp_path, capsys, monkeypatch, cfg):
    snapshot = snapshots[cfg]
    with open(snapshot.parent / 'stats.jsonl') as f:
        ticks = [json.loads(line) for line in f]
    keys = ['Loss/G/loss'] + (['Loss/D/loss', 'Loss/signs/real', 'Loss/scores/fake', 'Loss/r1_penalty'] if cfg == 'ddgan_demo' else [])
    for key in keys:
        assert any(key in tick for tick in ticks) and all(np.isfinite(tick[key]['mean']) for tick in ticks if key in tick), key
    assert 'Progress/diffusion_p' not in ticks[-1]
    with open(snapshot, 'rb') as f:
        data = pickle.load(f)
    assert data['family'] == cfg[:-5] and data['augment_pipe'] is None and ('D' in data) == (cfg == 'ddgan_demo')
    G = data['G_ema']
    assert (G.num_timesteps, G.sample_steps, G.sampler) == ((1000, 10, 'ddim') if cfg == 'ddpm_demo' else (4, 4, 'ddpm'))
    assert G.z_dim == 16 * 16 and not G.training

    # A fresh process without our training package renders the same images.
    result = load_in_fresh_process(str(snapshot), tmp_path / 'fresh')
    z = torch.from_numpy(np.random.RandomState(7).randn(4, G.z_dim)).float()
    assert torch.equal(result['img'], G(z, torch.zeros([4, 0])))

    # generate.py: the network's default sampling, and DDPM's classical sampler over 100 strided steps.
    for args, kwargs in [([], {})] + ([(['--sample-steps=100', '--sampler=ddpm'], dict(sample_steps=100, sampler='ddpm'))] if cfg == 'ddpm_demo' else []):
        outdir = tmp_path / f'out{len(args)}'
        code, _out, err = run_command(capsys, generate.main, 'generate.py', f'--network={snapshot}', '--seeds=0-2', f'--outdir={outdir}', *args)
        assert code == 0, err
        assert_seed_pngs(outdir, G, [0, 1, 2], torch.zeros([1, 0]), **kwargs)

    # calc_metrics.py: FID of 16 images (fake detector).
    use_fake_detectors(monkeypatch, tmp_path)
    code, _out, err = run_command(capsys, calc_metrics.main, 'calc_metrics.py', '--network', snapshot, '--metrics', 'fid50k_full', '--num-gen', '16')
    assert code == 0, err
    with open(snapshot.parent / 'metric-fid50k_full.jsonl') as f:
        assert np.isfinite(json.loads(f.readlines()[-1])['results']['fid50k_full'])

@pytest.mark.slow('trainings of several ticks: the snapshots fixture')
def test_generate_bad_input(snapshots, tmp_path, capsys):
    # One line, exit 2, nothing written: options of GANs only, sampling steps out of range, DDGAN's fixed steps, and
    # sampling options for a generator that is no sampler.
    dcgan = train_tiny(tmp_path, 'dcgan_demo', total_kimg=0.016)
    cases = [
        ('ddpm_demo', ['--trunc=0.7'], '--trunc=0.7: the Generator of --network='),
        ('ddgan_demo', ['--trunc=0.5'], '--trunc=0.5: the Generator of --network='),
        ('ddpm_demo', ['--sample-steps=0'], "'--sample-steps': 0 is not in the range x>=1"),
        ('ddpm_demo', ['--sample-steps=1001'], '--sample-steps=1001: expected 1 to 1000, the trained timesteps'),
        ('ddgan_demo', ['--sample-steps=2'], '--sample-steps=2: DDGAN samples with the 4 steps it was trained on'),
        ('ddgan_demo', ['--sampler=ddim'], '--sampler=ddim: DDGAN samples from its posterior'),
        ('ddpm_demo', ['--sampler=euler'], "'--sampler'"),
        ('dcgan', ['--sample-steps=10'], '--sample-steps/--sampler: the Generator of --network='),
    ]
    for cfg, args, words in cases:
        outdir = tmp_path / 'out'
        code, _out, err = run_command(capsys, generate.main, 'generate.py', f'--network={dcgan if cfg == "dcgan" else snapshots[cfg]}', '--seeds=0', f'--outdir={outdir}', *args)
        assert code == 2 and len(err) == 1 and err[0].startswith('generate.py: error: ') and words in err[0], (args, err)
        assert not outdir.exists()

@pytest.mark.slow('a study over several samplers')
def test_sampling_tradeoff(snapshots, tmp_path, capsys, monkeypatch):
    # A JSON line per entry (DDPM at two samplings, DDGAN), the same rows in the CSV, the PNG; a bad entry is one line.
    use_fake_detectors(monkeypatch, tmp_path)
    ddpm, ddgan = snapshots['ddpm_demo'], snapshots['ddgan_demo']
    out = tmp_path / 'plots' / 'tradeoff'
    code, stdout, err = run_command(capsys, sampling_tradeoff.main, 'sampling_tradeoff.py', f'{ddpm}@ddim:3', f'{ddpm}@ddpm:5', str(ddgan),
                                    '--labels=DDIM-3,DDPM-5,DDGAN', '--num-gen=8', '--timing-images=4', '--batch=2', f'--out={out}')
    assert code == 0, err
    rows = [json.loads(line) for line in stdout]
    assert [(row['label'], row['family'], row['sampler'], row['sample_steps']) for row in rows] == [('DDIM-3', 'ddpm', 'ddim', 3), ('DDPM-5', 'ddpm', 'ddpm', 5), ('DDGAN', 'ddgan', 'ddpm', 4)]
    assert all(row['images_per_sec'] > 0 and np.isfinite(row['fid']) and row['num_gen'] == 8 for row in rows)
    with open(str(out) + '.csv') as f:
        table = list(csv.DictReader(f))
    assert [(r['label'], float(r['fid'])) for r in table] == [(row['label'], row['fid']) for row in rows]
    assert (tmp_path / 'plots' / 'tradeoff.png').stat().st_size > 0
    for entry, words in [(f'{ddpm}@ddim:x', 'expected PKL or PKL@SAMPLER:STEPS'), (f'{ddpm}@ddim:2000', '--sample-steps=2000: expected 1 to 1000'), (f'{ddgan}@ddpm:2', 'DDGAN samples with the 4 steps')]:
        code, _stdout, err = run_command(capsys, sampling_tradeoff.main, 'sampling_tradeoff.py', entry, f'--out={tmp_path / "bad"}')
        assert code == 2 and len(err) == 1 and words in err[0], err

#----------------------------------------------------------------------------

@pytest.mark.parametrize('cfg', ['ddpm_demo', 'ddgan_demo'])
@pytest.mark.slow('SIGKILL resume: a killed training continued, and a straight one')
def test_resumed_run_equals_straight_run(tmp_path, cfg):
    # Killed during tick 3's snapshot, resumed with --resume=latest: weights, G_ema, optimizer states, RNG states and
    # every tick's statistics equal the straight run's (which also rendered image grids, by sampling that draws from
    # per-sample generators, not torch's). DDGAN's lazy R1 (every 15 minibatches) falls in the resumed part.
    runs = straight_killed_resumed(tmp_path, cfg=cfg)
    straight = load_pkl(runs.straight / 'network-snapshot-000000.pkl')
    resumed = load_pkl(runs.resumed / 'network-snapshot-000000.pkl')
    assert straight['progress'] == resumed['progress'] == dict(cur_nimg=160, cur_tick=5, batch_idx=20)
    modules = [name for name, value in straight.items() if isinstance(value, torch.nn.Module)]
    assert set(modules) == ({'G', 'G_ema', 'D'} if cfg == 'ddgan_demo' else {'G', 'G_ema'})
    for name in modules:
        assert_same_tensors(straight[name], resumed[name], name)
    assert not torch.equal(straight['G_ema'].unet.conv_in.weight if cfg == 'ddpm_demo' else straight['G_ema'].net.conv_in.weight,
                           straight['G'].unet.conv_in.weight if cfg == 'ddpm_demo' else straight['G'].net.conv_in.weight) # the EMA is on
    a, b = straight['resume_state'], resumed['resume_state']
    for key in ['optimizers', 'ranks', 'cur_nimg', 'cur_tick', 'batch_idx']:
        assert_same_nest(a[key], b[key], key)
    assert len(a['optimizers']['G']['state']) > 0 and runs.r_d.straight == runs.r_d.resumed == []
    straight_stats, killed_stats, resumed_stats = read_stats(runs.straight), read_stats(runs.killed), read_stats(runs.resumed)
    assert [tick['Progress/tick']['mean'] for tick in resumed_stats] == [3, 4, 5] and TOTAL_KIMG == 0.16
    assert_same_stats(killed_stats[:3], straight_stats[:3])
    assert_same_stats(resumed_stats, straight_stats[3:])
    if cfg == 'ddgan_demo':
        assert 'Loss/r1_penalty' not in resumed_stats[0] and resumed_stats[1]['Loss/r1_penalty']['num'] > 0 # minibatch 15

#----------------------------------------------------------------------------

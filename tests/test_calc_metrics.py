"""Tests of calc_metrics.py: a tiny snapshot end to end (metric-*.jsonl next to the pickle, dataset statistics
reused on the second run), a metric whose detector cannot be downloaded failing alone with one line naming the
cache path, and one-line errors with exit code 2 for bad input."""

import json
import os
import shutil

import pytest
import torch

import calc_metrics
import dnnlib
from tests.cli_helpers import run_command
from tests.test_legacy import official_training_snapshot
from metrics import metric_utils
from tests.metrics.helpers import digits_kwargs, fail_downloads, tiny_generator, use_fake_detectors, write_pngs, write_snapshot

#----------------------------------------------------------------------------

def run_calc_metrics(capsys, *args):
    """Run calc_metrics.py's command line in-process; return (exit code, stdout lines, stderr lines)."""
    return run_command(capsys, calc_metrics.main, 'calc_metrics.py', *args)

def read_jsonl(path):
    with open(path, 'rt') as f:
        return [json.loads(line) for line in f]

#----------------------------------------------------------------------------

def test_tiny_snapshot_end_to_end(monkeypatch, tmp_path, capsys):
    use_fake_detectors(monkeypatch, tmp_path)
    pkl = write_snapshot(tmp_path / 'network-snapshot-000000.pkl', tiny_generator(img_channels=1), digits_kwargs())
    metrics = ['fid50k_full', 'kid50k_full', 'pr50k3_full', 'is50k', 'ppl2_wend']
    code, out, err = run_calc_metrics(capsys, '--network', pkl, '--metrics', ','.join(metrics), '--num-gen', '16')
    assert code == 0 and err == []
    for metric in metrics:
        [line] = read_jsonl(tmp_path / f'metric-{metric}.jsonl')
        assert line['metric'] == metric and line['num_gen'] == 16 and line['snapshot_pkl'] == 'network-snapshot-000000.pkl'
        assert line['results'] and all(isinstance(v, float) for v in line['results'].values())

    # A second run reuses the dataset statistics and appends a line with the same value.
    code, out, err = run_calc_metrics(capsys, '--network', pkl, '--metrics', 'fid50k_full', '--num-gen', '16')
    assert code == 0 and any(line.startswith('Using cached dataset statistics') for line in out)
    first, second = read_jsonl(tmp_path / 'metric-fid50k_full.jsonl')
    assert first['results'] == second['results']

def test_official_training_snapshot(monkeypatch, tmp_path, capsys):
    # A snapshot of the official Diffusion-GAN loop (its diffusion object and 'progress' dict beside the networks)
    # scores exactly as the same generator in a plain snapshot.
    use_fake_detectors(monkeypatch, tmp_path)
    G = tiny_generator(img_channels=1)
    data_bytes, _weights, _numbers = official_training_snapshot(monkeypatch, aug='diff', networks=dict(G=G, D=None, G_ema=G), training_set_kwargs=digits_kwargs())
    (tmp_path / 'official').mkdir()
    official = tmp_path / 'official' / 'network-snapshot-000040.pkl'
    official.write_bytes(data_bytes)
    (tmp_path / 'plain').mkdir()
    plain = write_snapshot(tmp_path / 'plain' / 'network-snapshot-000040.pkl', G, digits_kwargs())
    for pkl in [official, plain]:
        code, out, err = run_calc_metrics(capsys, '--network', pkl, '--metrics', 'fid50k_full', '--num-gen', '16')
        assert code == 0 and err == [], err
    assert read_jsonl(official.parent / 'metric-fid50k_full.jsonl')[0]['results'] == read_jsonl(tmp_path / 'plain' / 'metric-fid50k_full.jsonl')[0]['results']

def test_data_option_and_mirror(monkeypatch, tmp_path, capsys):
    use_fake_detectors(monkeypatch, tmp_path)
    pkl = write_snapshot(tmp_path / 'snapshot.pkl', tiny_generator(img_channels=3), training_set_kwargs=None)
    data = write_pngs(tmp_path / 'data', num_images=12)
    code, out, err = run_calc_metrics(capsys, '--network', pkl, '--data', data, '--mirror', '1', '--metrics', 'fid50k', '--num-gen', '8', '--verbose')
    assert code == 0 and err == []
    assert any('"xflip": true' in line for line in out) # --verbose prints the dataset options
    assert any('Computing dataset statistics of 24 images' in line for line in out) # fid50k keeps the x-flips
    assert len(read_jsonl(tmp_path / 'metric-fid50k.jsonl')) == 1

def test_offline_detector_fails_alone(monkeypatch, tmp_path, capsys):
    use_fake_detectors(monkeypatch, tmp_path, vgg16=False)
    fail_downloads(monkeypatch)
    pkl = write_snapshot(tmp_path / 'network-snapshot-000000.pkl', tiny_generator(img_channels=1), digits_kwargs())
    code, out, err = run_calc_metrics(capsys, '--network', pkl, '--metrics', 'pr50k3_full,fid50k_full', '--num-gen', '8')
    assert code == 2
    cache_dir = dnnlib.make_cache_dir_path('downloads')
    assert len(err) == 2, err
    assert err[0].startswith('pr50k3_full failed: Cannot download ' + metric_utils.VGG16_URL)
    assert os.path.join(cache_dir, '') in err[0] and err[0].endswith('_vgg16.pkl')
    assert err[1] == 'calc_metrics.py: error: 1 of 2 metrics failed: pr50k3_full'
    assert len(read_jsonl(tmp_path / 'metric-fid50k_full.jsonl')) == 1 # the other metric is still computed
    assert not os.path.exists(tmp_path / 'metric-pr50k3_full.jsonl')

@pytest.mark.parametrize('case', ['unknown metric', 'no training set', 'missing data', 'channels', 'recorded path gone', 'gpus'])
def test_bad_input_is_one_line(monkeypatch, tmp_path, capsys, case):
    use_fake_detectors(monkeypatch, tmp_path)
    G = tiny_generator(img_channels=1)
    pkl = write_snapshot(tmp_path / 'snapshot.pkl', G, digits_kwargs())
    args, expected = {
        'unknown metric':       (['--metrics', 'fid50k_full,fid'], '--metrics: unknown metric "fid"'),
        'no training set':      (['--network', write_snapshot(tmp_path / 'bare.pkl', G, dict(resolution=8))], 'does not record its training set; specify the dataset with --data'),
        'missing data':         (['--data', str(tmp_path / 'nowhere')], 'data set path does not exist'),
        'channels':             (['--data', write_pngs(tmp_path / 'rgb', num_images=4)], 'has 3-channel images, but the generator makes 1-channel images'),
        'recorded path gone':   (['--network', write_snapshot(tmp_path / 'moved.pkl', G, dict(class_name='training.dataset.ImageFolderDataset',
                                    path=str(tmp_path / 'gone.zip')))], 'is not usable here'),
        'gpus':                 (['--gpus', '64'], '--gpus=64: only'),
    }[case]
    if '--network' not in args:
        args = ['--network', pkl] + args
    code, out, err = run_calc_metrics(capsys, *args, '--num-gen', '8')
    assert code == 2 and len(err) == 1 and err[0].startswith('calc_metrics.py: error: ') and expected in err[0], err
    assert not any(name.startswith('metric-') for name in os.listdir(tmp_path))

#----------------------------------------------------------------------------

#----------------------------------------------------------------------------

@pytest.mark.parametrize('family', ['stylegan3', 'projected_gan'])
def test_other_families(monkeypatch, tmp_path, capsys, family):
    # A StyleGAN3 snapshot of ours, and an official Diffusion-ProjectedGAN pickle (FastGAN G_ema, D on timm dropped)
    # against 64 px RGB images: both score, and the dataset statistics are reused on the second run.
    use_fake_detectors(monkeypatch, tmp_path)
    if family == 'stylegan3':
        from training import networks_stylegan3
        torch.manual_seed(0)
        G = networks_stylegan3.Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=1, channel_base=256, channel_max=8).eval().requires_grad_(False)
        pkl = write_snapshot(tmp_path / 'network-snapshot-000000.pkl', G, digits_kwargs(resolution=16))
        args = []
    else:
        pkl = tmp_path / 'network-snapshot-000000.pkl'
        shutil.copy(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data', 'projected_gan_reference-fastgan.pkl'), pkl)
        args = ['--data', write_pngs(tmp_path / 'data', 16, size=64)]
    for run in range(2):
        code, out, err = run_calc_metrics(capsys, '--network', pkl, *args, '--metrics', 'fid50k_full', '--num-gen', '16')
        assert code == 0, err
        assert (run == 1) == any(line.startswith('Using cached dataset statistics') for line in out)
    for line in read_jsonl(tmp_path / 'metric-fid50k_full.jsonl'):
        assert line['results']['fid50k_full'] > 0

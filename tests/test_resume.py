"""Exact resume and crash safety of train.py / training/training_loop.py: a run killed with SIGKILL in the middle of
writing a snapshot and resumed with --resume=latest ends with the same weights, optimizer and diffusion states, RNG
states and statistics as the same run never stopped; broken snapshots are skipped; divergence and a full disk stop
the run with one clear message; bad resume input is refused before anything is written."""

import errno
import itertools
import json
import os
import pickle
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

import dnnlib
import legacy
import train
from tests.cli_helpers import run_command
from metrics import metric_main
from tests.test_legacy import official_training_snapshot
from tests.test_train import tiny_config, write_pngs
from torch_utils import misc
from training import snapshot
from training import training_loop
from training.diffusion import Diffusion
from training.loss import StyleGAN2Loss

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# 8 images per minibatch, 4 minibatches per tick: ticks 0..5 end after minibatches 1, 5, 9, 13, 17, 20. Lazy R1 (every
# 16) and the diffusion's adaptation (every 4) both fall in the resumed part, the latter across the tick boundaries.
TOTAL_KIMG = 0.16
KILL_AT_SNAPSHOT = 4    # SIGKILL half-way through writing tick 3's pickle: the newest valid snapshot is tick 2's

#----------------------------------------------------------------------------

_KILLED_RUN = r'''
import json, os, signal, sys, torch
from training import snapshot, training_loop
config, kill_at = json.load(open(sys.argv[1])), int(sys.argv[2])
write_atomic = snapshot.write_atomic
num_pickles = [0]
def write_then_die(fname, data):
    if fname.endswith('.pkl'):
        num_pickles[0] += 1
        if num_pickles[0] == kill_at: # a crash mid-write: half a temporary file, no cleanup of any kind
            with open(fname + '.tmp', 'wb') as f:
                f.write(data[:len(data) // 2])
                f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
    write_atomic(fname, data)
snapshot.write_atomic = write_then_die
training_loop.training_loop(**config)
'''

def read_stats(run_dir):
    with open(os.path.join(run_dir, 'stats.jsonl')) as f:
        return [json.loads(line) for line in f]

def assert_same_stats(a, b):
    """Two runs' stats lines: the same names and counts; means and stds equal up to float64 rounding, since
    training_stats derives each tick's moments from running totals over the whole process, which differ between a
    process that ran from tick 0 and one that started at the resumed tick. Wall clock and memory are left out."""
    assert len(a) == len(b)
    for tick_a, tick_b in zip(a, b):
        names = [name for name in tick_a if not name.startswith(('Timing/', 'Resources/')) and name != 'timestamp']
        assert sorted(names) == sorted(name for name in tick_b if not name.startswith(('Timing/', 'Resources/')) and name != 'timestamp')
        for name in names:
            assert tick_a[name]['num'] == tick_b[name]['num'], name
            assert tick_a[name]['mean'] == pytest.approx(tick_b[name]['mean'], rel=1e-12, abs=1e-12), name
            assert tick_a[name]['std'] == pytest.approx(tick_b[name]['std'], rel=1e-9, abs=1e-12), name

def load_pkl(path):
    with open(path, 'rb') as f:
        return pickle.load(f)

def assert_same_tensors(a, b, what):
    a, b = dict(misc.named_params_and_buffers(a)), dict(misc.named_params_and_buffers(b))
    assert a.keys() == b.keys(), what
    for name in a:
        assert torch.equal(a[name], b[name]), f'{what}.{name}'

def assert_same_nest(a, b, what):
    """Equality of nested dicts / lists / tuples of tensors, arrays and plain values, exactly."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), what
    elif isinstance(a, np.ndarray):
        assert np.array_equal(a, b), what
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), what
        for key in a:
            assert_same_nest(a[key], b[key], f'{what}.{key}')
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), what
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_nest(x, y, f'{what}[{i}]')
    else:
        assert a == b, what

#----------------------------------------------------------------------------

def straight_killed_resumed(root, cfg: str, args=()) -> dnnlib.EasyDict:
    """The straight run, and the same run killed during tick 3's snapshot and resumed with --resume=latest. Only the
    straight run writes image grids: that they leave the numbers alone is part of what is compared."""
    r_d = dnnlib.EasyDict(straight=[], resumed=[]) # every r_d the diffusion adapts to, per in-process run
    adapt = Diffusion.adapt
    def recording_adapt(run):
        def wrapper(self, value, num_images):
            if self.p_step is None: # the adaptive diffusion (not a companion's fixed steps)
                r_d[run].append(value)
            adapt(self, value, num_images)
        return wrapper
    straight_dir = root / 'straight' / '00000-tiny'
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Diffusion, 'adapt', recording_adapt('straight'))
        training_loop.training_loop(**tiny_config(straight_dir, cfg=cfg, args=args, total_kimg=TOTAL_KIMG))

    outdir = root / 'runs'
    killed_dir = outdir / '00001-tiny'
    config_file = root / 'config.json'
    config_file.write_text(json.dumps(tiny_config(killed_dir, cfg=cfg, args=args, total_kimg=TOTAL_KIMG, image_snapshot_ticks=None)))
    env = dict(os.environ, PYTHONPATH=REPO_ROOT) # OMP_NUM_THREADS as here (conftest): the runs it is compared with run in this process
    proc = subprocess.run([sys.executable, '-c', _KILLED_RUN, str(config_file), str(KILL_AT_SNAPSHOT)],
                          cwd=str(root), env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stdout[-2000:] + proc.stderr[-2000:]

    # A newer run whose snapshot was cut short (a copy interrupted, a disk error): --resume=latest must skip it.
    broken_dir = outdir / '00002-tiny'
    broken_dir.mkdir()
    good = (killed_dir / 'network-snapshot-000000.pkl').read_bytes()
    (broken_dir / 'network-snapshot-000000.pkl').write_bytes(good[:len(good) // 3])

    resume_pkl, _data = train.find_latest_snapshot(str(outdir))
    resumed_dir = root / 'resumed' / '00000-tiny'
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Diffusion, 'adapt', recording_adapt('resumed'))
        training_loop.training_loop(**tiny_config(resumed_dir, cfg=cfg, args=args, total_kimg=TOTAL_KIMG, resume_pkl=resume_pkl, image_snapshot_ticks=None))
    return dnnlib.EasyDict(straight=straight_dir, outdir=outdir, killed=killed_dir, broken=broken_dir, resumed=resumed_dir, resume_pkl=resume_pkl, r_d=r_d)

@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    return straight_killed_resumed(tmp_path_factory.mktemp('resume'), cfg='demo')

@pytest.mark.slow('SIGKILL resume: a killed training continued, and a straight one')
def test_kill_leaves_earlier_snapshot_loadable(runs):
    names = os.listdir(runs.killed)
    assert 'network-snapshot-000000.pkl.tmp' in names # the half-written pickle of tick 3, never renamed into place
    data = load_pkl(runs.killed / 'network-snapshot-000000.pkl')
    assert data['progress'] == dict(cur_nimg=72, cur_tick=2, batch_idx=9)
    assert runs.resume_pkl == str(runs.killed / 'network-snapshot-000000.pkl')

@pytest.mark.slow('SIGKILL resume: the killed training of the runs fixture')
def test_resume_latest_skips_broken_snapshot_with_warning(runs, capsys):
    path, data = train.find_latest_snapshot(str(runs.outdir))
    err = capsys.readouterr().err
    assert path == runs.resume_pkl and data['resume_state']['cur_tick'] == 2
    assert 'Warning: --resume=latest: skipping' in err and 'truncated' in err and '00002-tiny' in err

def assert_resumed_equals_straight(runs, loss_state, lazy_r1=True):
    straight = load_pkl(runs.straight / 'network-snapshot-000000.pkl')
    resumed = load_pkl(runs.resumed / 'network-snapshot-000000.pkl')
    assert straight['progress'] == resumed['progress'] == dict(cur_nimg=160, cur_tick=5, batch_idx=20)
    modules = [name for name, value in straight.items() if isinstance(value, torch.nn.Module)]
    assert {'G', 'D', 'G_ema', 'augment_pipe'} <= set(modules)
    for name in modules:
        assert_same_tensors(straight[name], resumed[name], name)
    assert straight['diffusion_state'] == resumed['diffusion_state'] and straight['diffusion_state']['p'] > 0
    a, b = straight['resume_state'], resumed['resume_state']
    for key in ['optimizers', 'diffusion', 'ada_pending', 'ranks', 'cur_nimg', 'cur_tick', 'batch_idx']:
        assert_same_nest(a[key], b[key], key)
    assert len(a['optimizers']['G']['state']) > 0 and a['ranks'][0]['loss'].keys() == loss_state

    # The diffusion adapted to the same r_d at minibatches 12, 16, 20; the one at 12 averages signs from both sides
    # of the snapshot (minibatch 9 before it), so it needs the pending signs the snapshot carried.
    assert len(runs.r_d.straight) == 5 and runs.r_d.resumed == runs.r_d.straight[2:]

    # Statistics of every tick: the resumed run's ticks 3..5 equal the straight run's; the killed run's 0..2 too.
    straight_stats, killed_stats, resumed_stats = read_stats(runs.straight), read_stats(runs.killed), read_stats(runs.resumed)
    assert [tick['Progress/tick']['mean'] for tick in resumed_stats] == [3, 4, 5]
    assert_same_stats(killed_stats[:3], straight_stats[:3])
    assert_same_stats(resumed_stats, straight_stats[3:])
    if lazy_r1:
        assert 'Loss/D/reg' not in resumed_stats[0] and resumed_stats[1]['Loss/D/reg']['num'] > 0 # lazy R1 at minibatch 16

def test_resumed_run_equals_straight_run(runs):
    assert_resumed_equals_straight(runs, loss_state={'pl_mean'})

@pytest.mark.slow('SIGKILL resume: a killed training continued, and a straight one')
def test_stylegan3_resumed_run_equals_straight_run(tmp_path):
    # The same for the StyleGAN3 family: its G's magnitude EMAs, Gboth phase without lazy regularization, D lr.
    runs = straight_killed_resumed(tmp_path, cfg='stylegan3-t')
    assert_resumed_equals_straight(runs, loss_state={'pl_mean'})
    G = load_pkl(runs.resumed / 'network-snapshot-000000.pkl')['G']
    assert any(name.endswith('magnitude_ema') and float(buf) != 1 for name, buf in G.named_buffers())

@pytest.mark.slow('SIGKILL resume: a killed training continued, and a straight one')
def test_insgen_resumed_run_equals_straight_run(tmp_path):
    # InsGen: the heads' queues (89 slots, wrapping within the run), their key encoders, D_ema and the heads'
    # optimizers are part of the exact resume state.
    runs = straight_killed_resumed(tmp_path, cfg='demo', args=['--insgen'])
    assert_resumed_equals_straight(runs, loss_state={'pl_mean'})
    straight = load_pkl(runs.straight / 'network-snapshot-000000.pkl')
    assert {'DHead', 'GHead'} <= straight['resume_state']['optimizers'].keys() and straight['family'] == 'insgen'
    assert [int(straight[name].queue_ptr) for name in ['DHead', 'GHead']] == [160 % 89] * 2
    assert not torch.equal(straight['D_ema'].b4.out.weight, straight['D'].b4.out.weight)

@pytest.mark.slow('SIGKILL resume: a killed training continued, and a straight one')
def test_projected_gan_resumed_run_equals_straight_run(tmp_path):
    # And for ProjectedGAN: batch norm statistics and spectral-norm vectors in G and D, DiffAugment inside D, the
    # diffusion of feature maps (its own pool semantics), the frozen feature network rebuilt on resume.
    runs = straight_killed_resumed(tmp_path, cfg='fastgan_demo')
    assert_resumed_equals_straight(runs, loss_state=set(), lazy_r1=False)

@pytest.mark.parametrize('cfg,args', [('dcgan_demo', []), ('difgan', ['--diffusion', '--steps', '3'])])
@pytest.mark.slow('SIGKILL resume: a killed training continued, and a straight one')
def test_small_families_resumed_run_equals_straight_run(tmp_path, cfg, args):
    # DCGAN (batch-norm statistics in G and D, no regularization) and DifGAN (its unrolled G, D on every step).
    runs = straight_killed_resumed(tmp_path, cfg=cfg, args=args)
    assert_resumed_equals_straight(runs, loss_state={'pl_mean'}, lazy_r1=False) # StyleGAN2Loss's, unused here

def test_resume_rejects_finished_snapshot(runs, tmp_path):
    c = tiny_config(tmp_path / 'again', total_kimg=TOTAL_KIMG, resume_pkl=str(runs.resumed / 'network-snapshot-000000.pkl'))
    with pytest.raises(dnnlib.UserError, match=r'already at --kimg=0.16; raise --kimg'):
        training_loop.training_loop(**c)

def test_resume_without_state_transfers_networks_only(runs, tmp_path):
    # A pickle without resume_state: its networks and its diffusion's p are copied, everything else starts afresh.
    data = load_pkl(runs.straight / 'network-snapshot-000000.pkl')
    for key in ['resume_state', 'progress', 'diffusion_state']:
        del data[key]
    official = tmp_path / 'official.pkl'
    official.write_bytes(pickle.dumps(data))
    c = tiny_config(tmp_path / '00000-transfer', total_kimg=0.008, resume_pkl=str(official), image_snapshot_ticks=None)
    for opt_kwargs in c.opt_kwargs.values():
        opt_kwargs.lr = 0 # one step that changes nothing: G and D must still be the pickle's
    training_loop.training_loop(**c)
    result = load_pkl(tmp_path / '00000-transfer' / 'network-snapshot-000000.pkl')
    assert result['progress'] == dict(cur_nimg=8, cur_tick=0, batch_idx=1)
    assert result['diffusion_state']['p'] == data['augment_pipe'].p > 0 # one minibatch: no adaptation yet
    for name in ['G', 'D']: # parameters only: G's w_avg tracks the latents it saw
        a, b = dict(result[name].named_parameters()), dict(data[name].named_parameters())
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name

def test_resume_from_official_training_snapshot(runs, tmp_path, monkeypatch, capsys):
    # A snapshot of the official Diffusion-GAN loop: networks, its own diffusion object under 'diffusion' (p 0.3125)
    # and a 'progress' dict. G, D, G_ema and p carry over as a start; T follows from p with this run's t_min/t_max.
    ours = load_pkl(runs.straight / 'network-snapshot-000000.pkl')
    networks = {name: ours[name] for name in ['G', 'D', 'G_ema']}
    data_bytes, _weights, numbers = official_training_snapshot(monkeypatch, networks=networks)
    monkeypatch.undo()
    official = tmp_path / 'official.pkl'
    official.write_bytes(data_bytes)
    c = tiny_config(tmp_path / '00000-official', total_kimg=0.008, resume_pkl=str(official), image_snapshot_ticks=None)
    for opt_kwargs in c.opt_kwargs.values():
        opt_kwargs.lr = 0
    training_loop.training_loop(**c)
    assert 'Diffusion from the resumed snapshot: p 0.3125, T 38' in capsys.readouterr().out
    result = load_pkl(tmp_path / '00000-official' / 'network-snapshot-000000.pkl')
    assert result['diffusion_state']['p'] == numbers['p'] and result['diffusion_state']['T'] == 10 + round(0.3125 * (100 - 10))
    for name in ['G', 'D']:
        a, b = dict(result[name].named_parameters()), dict(ours[name].named_parameters())
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name

@pytest.mark.slow('SIGKILL resume: a killed training continued, and a straight one')
def test_dudgan_resumed_run_equals_straight_run(tmp_path):
    # DuDGAN: C, its AdamW state and C's own diffusion (p stepping by a fixed amount, its pool generator) are part of
    # the exact resume state.
    runs = straight_killed_resumed(tmp_path, cfg='demo', args=['--dudgan', '--cond', '1', '--kimg', '10'])
    assert_resumed_equals_straight(runs, loss_state={'pl_mean'})
    straight, resumed = [load_pkl(run / 'network-snapshot-000000.pkl') for run in [runs.straight, runs.resumed]]
    assert_same_nest(straight['resume_state']['companions'], resumed['resume_state']['companions'], 'companions')
    assert straight['resume_state']['companions']['diffusion_C']['state']['p'] == pytest.approx(5 * round(64 / 10000, 6))
    assert 'C' in straight['resume_state']['optimizers'] and straight['family'] == 'dudgan'

def test_insgen_starts_from_official_snapshot(tmp_path):
    # --insgen --resume=<an official Diffusion-InsGen snapshot> (tools/insgen_reference.py) starts from all of its
    # networks: after one minibatch of 8, D_ema moved once toward their D (the update comes before the step), the
    # heads' queues hold theirs but for the 8 slots written from their pointers on, and p is theirs.
    official = os.path.join(REPO_ROOT, 'tests', 'data', 'insgen_reference.pkl')
    theirs = legacy.open_network(official)
    c = tiny_config(tmp_path / '00000-official', args=['--insgen'], total_kimg=0.008, resume_pkl=official, image_snapshot_ticks=None)
    training_loop.training_loop(**c)
    result = load_pkl(tmp_path / '00000-official' / 'network-snapshot-000000.pkl')
    assert result['diffusion_state']['p'] == 0.25
    for (name, ours), their in zip(result['D_ema'].named_parameters(), theirs['D_ema'].parameters()):
        torch.testing.assert_close(ours, their * 0.999 + dict(theirs['D'].named_parameters())[name] * 0.001, rtol=0, atol=1e-7)
    for name in ['DHead', 'GHead']:
        ptr = int(theirs[name].queue_ptr)
        kept = [i for i in range(89) if i not in range(ptr, ptr + 8)]
        assert int(result[name].queue_ptr) == ptr + 8
        assert torch.equal(result[name].queue[:, kept], theirs[name].queue[:, kept])
        assert not torch.equal(result[name].queue[:, ptr:ptr + 8], theirs[name].queue[:, ptr:ptr + 8])

@pytest.mark.slow('trainings of several ticks with metrics')
def test_best_metrics_bookkeeping_and_resume(tmp_path, monkeypatch):
    # Two stand-in metrics with programmed values at the snapshots of ticks 0..3: a FID-like one (lower is better)
    # and a precision (higher is better). Each snapshot is rewritten with the latest values and the best so far;
    # a run resumed from tick 1's snapshot continues the bookkeeping from there.
    values = dict(fid_fake=[5.0, 3.0, 4.0, 3.5, 2.5, 6.0], fake_pr=[0.2, 0.1, 0.3, 0.25, 0.05, 0.4])
    calls = dict(fid_fake=0, fake_pr=0)
    def metric(name, result_name):
        def compute(opts):
            calls[name] += 1
            return {result_name: values[name][calls[name] - 1]}
        return compute
    monkeypatch.setitem(metric_main._metric_dict, 'fid_fake', metric('fid_fake', 'fid_fake'))
    monkeypatch.setitem(metric_main._metric_dict, 'fake_pr', metric('fake_pr', 'fake_pr_precision'))
    kept = {}
    write_atomic = snapshot.write_atomic
    def keeping_write(fname, data):
        write_atomic(fname, data)
        if fname.endswith('.pkl'):
            kept.setdefault(fname, []).append(pickle.loads(data)['resume_state'])
    monkeypatch.setattr(snapshot, 'write_atomic', keeping_write)
    c = tiny_config(tmp_path / '00000-metrics', metrics=['fid_fake', 'fake_pr'], image_snapshot_ticks=None)
    training_loop.training_loop(**c)
    [states] = kept.values() # ticks shorter than 1 kimg share one snapshot name; each tick writes it twice
    after_metrics = states[1::2] # the rewrite with the metric results
    assert [state['stats_metrics'] for state in after_metrics] == [dict(fid_fake=v, fake_pr_precision=w) for v, w in zip(values['fid_fake'][:4], values['fake_pr'][:4])]
    best = after_metrics[-1]['best_metrics']
    assert best['fid_fake']['value'] == 3.0 and best['fid_fake']['kimg'] == pytest.approx(after_metrics[1]['cur_nimg'] / 1000)
    assert best['fake_pr_precision']['value'] == 0.3 and best['fake_pr_precision']['kimg'] == pytest.approx(after_metrics[2]['cur_nimg'] / 1000)
    lines = [json.loads(line) for line in open(tmp_path / '00000-metrics' / 'metric-fid_fake.jsonl')]
    assert [line['results']['fid_fake'] for line in lines] == values['fid_fake'][:4]

    # Resume from the tick-1 state (best fid 3.0 so far); the next values 4.0, 3.5 do not beat it, 2.5 would.
    resume_pkl = tmp_path / 'tick1.pkl'
    data = load_pkl(tmp_path / '00000-metrics' / 'network-snapshot-000000.pkl')
    data['resume_state'] = after_metrics[1]
    resume_pkl.write_bytes(pickle.dumps(data))
    kept.clear()
    calls.update(fid_fake=2, fake_pr=2)
    c = tiny_config(tmp_path / '00001-resumed', metrics=['fid_fake', 'fake_pr'], image_snapshot_ticks=None, resume_pkl=str(resume_pkl), total_kimg=0.096)
    training_loop.training_loop(**c)
    [states] = kept.values()
    assert states[-1]['best_metrics']['fid_fake']['value'] == 3.0 and states[-1]['best_metrics']['fake_pr_precision']['value'] == 0.3
    assert states[-1]['stats_metrics'] == dict(fid_fake=3.5, fake_pr_precision=0.25)

def test_is_better():
    assert training_loop.is_better('fid50k_full', 2.0, 3.0) and not training_loop.is_better('kid50k_full', 3.0, 2.0)
    assert training_loop.is_better('pr50k3_full_recall', 0.5, 0.4) and training_loop.is_better('is50k_mean', 9.0, 8.0)
    assert training_loop.is_better('modes10k_classes', 10, 9) and training_loop.is_better('modes10k_kl', 0.1, 0.2)
    assert not training_loop.is_better('modes10k_accuracy', 0.99, 0.5) and not training_loop.is_better('is50k_std', 0.1, 0.2)

@pytest.mark.slow('SIGKILL resume: a killed training continued, and a straight one')
def test_cli_resume_latest(tmp_path):
    # train.py end to end: the same command plus --resume=latest (and a longer --kimg) continues the newest snapshot.
    cmd = [sys.executable, os.path.join(REPO_ROOT, 'train.py'), '--outdir', str(tmp_path), '--batch', '8', '--tick', '0.008', '--snap', '1', '--metrics', 'none']
    env = dict(os.environ, OMP_NUM_THREADS='1')
    first = subprocess.run(cmd + ['--kimg', '0.008'], cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    second = subprocess.run(cmd + ['--kimg', '0.016', '--resume', 'latest'], cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]
    first_dir, second_dir = sorted(tmp_path.glob('0000*'))
    assert f'Resuming from "{first_dir / "network-snapshot-000000.pkl"}"' in second.stdout
    assert 'Training for 0.016 kimg, from kimg 0.008 (tick 1)...' in second.stdout and 'Warning' not in second.stdout
    options = json.loads((second_dir / 'training_options.json').read_text())
    assert options['resume_pkl'] == str(first_dir / 'network-snapshot-000000.pkl') and options['ema_rampup'] == 0.05
    assert [tick['Progress/tick']['mean'] for tick in read_stats(second_dir)] == [1]

#----------------------------------------------------------------------------

def test_sampler_start_idx_continues_the_stream():
    # The reference is the plain stream from position 0, advanced by hand; 70000 crosses the bulk-replay chunks.
    dataset = list(range(10))
    for start, rank, num_replicas in [(0, 0, 1), (7, 0, 1), (12, 1, 2), (70000, 0, 1), (70002, 1, 2)]:
        fresh = misc.InfiniteSampler(dataset, rank=rank, num_replicas=num_replicas, seed=5)
        expected = list(itertools.islice(iter(fresh), start // num_replicas, start // num_replicas + 30))
        resumed = misc.InfiniteSampler(dataset, rank=rank, num_replicas=num_replicas, seed=5, start_idx=start)
        assert list(itertools.islice(iter(resumed), 30)) == expected, (start, rank, num_replicas)
    with pytest.raises(ValueError, match='start_idx'):
        misc.InfiniteSampler(dataset, start_idx=-1)

#----------------------------------------------------------------------------
# Non-finite guard: a loss that turns NaN from some minibatch on.

class PoisonedLoss(StyleGAN2Loss):
    """StyleGAN2Loss whose D logits are NaN for minibatches starting at cur_nimg in [poison_start, poison_end)."""
    def __init__(self, poison_start, poison_end, **kwargs):
        super().__init__(**kwargs)
        self.poison_start = poison_start
        self.poison_end = poison_end
        self.poisoned = False

    def accumulate_gradients(self, phase, real_img, real_c, gen_z, gen_c, gain, cur_nimg):
        self.poisoned = self.poison_start <= cur_nimg < self.poison_end
        super().accumulate_gradients(phase, real_img, real_c, gen_z, gen_c, gain, cur_nimg)

    def run_D(self, img, c, **kwargs):
        logits = super().run_D(img, c, **kwargs)
        return logits * float('nan') if self.poisoned else logits

def poisoned_config(run_dir, poison_start, poison_end, total_kimg):
    c = tiny_config(run_dir, total_kimg=total_kimg)
    c.loss_kwargs = dnnlib.EasyDict(c.loss_kwargs, class_name='tests.test_resume.PoisonedLoss', poison_start=poison_start, poison_end=poison_end)
    return c

_POISONED_RUN = r'''
import sys, torch
torch.set_num_threads(1)
import dnnlib
from tests.test_resume import poisoned_config
from training import training_loop
try:
    training_loop.training_loop(**poisoned_config(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])))
except dnnlib.UserError as err:
    print(f'UserError: {err}')
    sys.exit(2)
'''

def run_poisoned(run_dir, poison_start, poison_end, total_kimg):
    """A poisoned run in its own process: the NaNs it reports stay in that process's training_stats totals."""
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, '-c', _POISONED_RUN, str(run_dir), str(poison_start), str(poison_end), str(total_kimg)],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)

@pytest.mark.slow('trainings of several ticks')
def test_nan_for_a_whole_tick_stops_naming_tick_and_snapshot(tmp_path):
    run_dir = tmp_path / '00000-nan'
    proc = run_poisoned(run_dir, poison_start=72, poison_end=10**9, total_kimg=TOTAL_KIMG) # every minibatch from tick 3 on
    last_good = str(run_dir / 'network-snapshot-000000.pkl')
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    message = proc.stdout.splitlines()[-1]
    assert message.startswith('UserError: training diverged at tick 3 ') and message.endswith(f'last good snapshot: {last_good}')
    assert load_pkl(last_good)['progress']['cur_tick'] == 2 # tick 3 wrote no snapshot
    assert read_stats(run_dir)[-1]['Progress/nonfinite_steps']['mean'] == 1

@pytest.mark.slow('trainings of several ticks')
def test_nan_in_one_minibatch_is_zeroed_and_counted(tmp_path):
    run_dir = tmp_path / '00000-blip'
    proc = run_poisoned(run_dir, poison_start=40, poison_end=48, total_kimg=0.072) # one minibatch of tick 2
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    ticks = read_stats(run_dir)
    assert [tick['Progress/tick']['mean'] for tick in ticks] == [0, 1, 2]
    assert ticks[1]['Progress/nonfinite_steps']['mean'] == 0 and ticks[1]['Progress/nonfinite_grads']['mean'] == 0
    assert 0 < ticks[2]['Progress/nonfinite_steps']['mean'] < 1 and ticks[2]['Progress/nonfinite_grads']['mean'] > 0
    G = load_pkl(run_dir / 'network-snapshot-000000.pkl')['G']
    assert all(torch.isfinite(p).all() for p in G.parameters())

#----------------------------------------------------------------------------
# Disk full while writing a snapshot.

def test_write_atomic_disk_full_keeps_old_file(tmp_path, monkeypatch):
    fname = str(tmp_path / 'file.bin')
    snapshot.write_atomic(fname, b'old contents')
    def fsync_full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(os, 'fsync', fsync_full)
    with pytest.raises(OSError) as info:
        snapshot.write_atomic(fname, b'new contents that do not fit')
    assert info.value.errno == errno.ENOSPC
    assert open(fname, 'rb').read() == b'old contents'
    assert os.listdir(tmp_path) == ['file.bin']

def test_disk_full_on_snapshot_stops_with_message(tmp_path, monkeypatch):
    run_dir = tmp_path / '00000-full'
    c = tiny_config(run_dir, total_kimg=0.072)
    write_atomic = snapshot.write_atomic
    num_writes = [0]
    def write_until_full(fname, data):
        num_writes[0] += 1
        if num_writes[0] > 3: # tick 0's snapshot fits (.safetensors, .json, .pkl), tick 1's does not
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        write_atomic(fname, data)
    monkeypatch.setattr(snapshot, 'write_atomic', write_until_full)
    last_good = str(run_dir / 'network-snapshot-000000.pkl')
    with pytest.raises(dnnlib.UserError, match=re.escape(f'cannot write the snapshot (No space left on device); last good snapshot: {last_good}') + '$'):
        training_loop.training_loop(**c)
    assert load_pkl(last_good)['progress']['cur_tick'] == 0

#----------------------------------------------------------------------------
# Bad input on the command line: one line naming the option or file, exit code 2, no run directory.

def test_bad_resume_and_option_messages(runs, tmp_path, capsys):
    snap = runs.straight / 'network-snapshot-000000.pkl'          # digits, 16 px, unconditional, at 0.16 kimg
    garbage = tmp_path / 'garbage.pkl'
    garbage.write_bytes(b'not a pickle at all')
    empty = tmp_path / 'empty-outdir'
    empty.mkdir()
    rgb32 = write_pngs(tmp_path / 'rgb32', [32, 32])
    gray16 = write_pngs(tmp_path / 'gray16', [16, 16], channels=1)
    labelled = write_pngs(tmp_path / 'labelled', [16, 16], channels=1)
    with open(os.path.join(labelled, 'dataset.json'), 'wt') as f:
        json.dump(dict(labels=[['img000.png', 0], ['img001.png', 1]]), f)
    out = tmp_path / 'out'
    cases = [
        ([f'--outdir={out}', '--data', gray16, '--snap', '0'], '--snap'),
        ([f'--outdir={out}', '--data', gray16, '--tick', '-1'], '--tick'),
        ([f'--outdir={out}', '--data', gray16, '--kimg', '0'], '--kimg'),
        ([f'--outdir={out}', '--data', gray16, '--seed', '-1'], '--seed'),
        ([f'--outdir={out}', '--data', gray16, '--cond', 'true'], '--cond=True requires dataset.json labels'),
        ([f'--outdir={empty}', '--data', gray16, '--resume', 'latest'], f'--resume=latest: no valid snapshot under --outdir={empty}'),
        ([f'--outdir={out}', '--data', gray16, '--resume', str(tmp_path)], 'Is a directory'),
        ([f'--outdir={out}', '--data', gray16, '--resume', str(garbage)], 'garbage.pkl: expected a network pickle, but the file is not a pickle'),
        ([f'--outdir={out}', '--data', rgb32, '--resume', str(snap)], 'the networks are for 16x16 images, but the training set is 32x32'),
        ([f'--outdir={out}', '--data', labelled, '--cond', 'true', '--resume', str(snap)], 'take 0-dimensional labels, but the training set gives 2'),
        ([f'--outdir={out}', '--data', gray16, '--kimg', '0.1', '--resume', str(snap)], 'already at --kimg=0.1'),
    ]
    for args, words in cases:
        code, _out, err = run_command(capsys, train.main, 'train.py', *args)
        assert code == 2, (args, err)
        assert len(err) == 1 and err[0].startswith('train.py: error: ') and words in err[0], (args, err)
        assert not out.exists() and os.listdir(empty) == [], args

#----------------------------------------------------------------------------

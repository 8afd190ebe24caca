"""Multi-process training on the CPU (gloo): ranks stay identical, 2 ranks x B images give the same
gradients and steps as 1 process x 2B images (and as 1 process accumulating 2 rounds of B), a stopped 2-process run
resumes bit-exactly, and a failing rank ends the whole job with its error."""

import os
import pickle
import subprocess
import sys

import numpy as np
import PIL.Image
import pytest
import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# One worker process: a tiny deterministic G/D (no per-pixel noise, minibatch-stddev group 1, no diffusion, no
# style mixing, no path length, whose random image-space directions and running mean are per rank by design:
# nothing depends on a rank's own RNG), one fixed global batch of 2B images of which this rank takes its slice,
# then the training loop's own phases (G main, D main with R1) for a few steps.
_WORKER = r'''
import sys, torch
rank, world, rounds_per_rank, init_file, out, family = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
torch.set_num_threads(1)
import dnnlib
from training import training_loop
from training.loss import StyleGAN2Loss, InsGenLoss
from training.insgen import ContrastiveHead
from torch_utils import misc
from training.networks_stylegan2 import Generator, Discriminator
from torch_utils.ops import conv2d_gradfix
conv2d_gradfix.enabled = True
if world > 1:
    torch.distributed.init_process_group('gloo', init_method='file://' + init_file, rank=rank, world_size=world)
torch.manual_seed(0)
G = Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=1, mapping_kwargs=dict(num_layers=1),
              channel_base=128, channel_max=8, use_noise=False)
D = Discriminator(c_dim=0, img_resolution=16, img_channels=1, channel_base=128, channel_max=8, epilogue_kwargs=dict(mbstd_group_size=1))
G.requires_grad_(False); D.requires_grad_(False)
opt = dict(class_name='torch.optim.Adam', lr=0.002, betas=[0.0, 0.99], eps=1e-8)
modules, step_with = dict(G=G, D=D), dict()
loss_kwargs = dict(device=torch.device('cpu'), G=G, D=D, diffusion=None, r1_gamma=1, style_mixing_prob=0, pl_weight=0)
if family == 'insgen':
    # Queue of 6 keys for 8 per step (wraps within a step), views without augmentation and fake keys from the
    # same latents, so that nothing depends on a rank's own RNG.
    modules.update(DHead=ContrastiveHead(in_features=8, queue_size=6).requires_grad_(False), GHead=ContrastiveHead(in_features=8, queue_size=6).requires_grad_(False))
    step_with = dict(DHead='D', GHead='D')
    D_ema = misc.deepcopy_module(D).eval()
    loss = InsGenLoss(DHead=modules['DHead'], GHead=modules['GHead'], D_ema=D_ema, view_aug_p=0, fake_view_z_std=0, **loss_kwargs)
else:
    loss = StyleGAN2Loss(**loss_kwargs)
phases = training_loop.make_phases(modules=modules, opt_kwargs={name: opt for name in modules}, reg_intervals=dict(G=None, D=None), step_with=step_with)
grads = {}
for step in range(3):
    if family == 'insgen':
        misc.momentum_update(D_ema, D, 0.9)
    data = torch.Generator().manual_seed(100 + step)
    real = torch.rand([8, 1, 16, 16], generator=data) * 2 - 1
    z = torch.randn([8, 8], generator=data)
    c = torch.zeros([8, 0])
    per_rank = 8 // world
    sl = slice(rank * per_rank, (rank + 1) * per_rank)
    split = lambda x: x[sl].split(per_rank // rounds_per_rank)
    for phase in phases:
        training_loop.run_phase(phase=phase, loss=loss, rounds=zip(split(real), split(c), split(z), split(c)), cur_nimg=0, num_gpus=world)
        for member, module, _opt in phase.members:
            grads.update({f'{step}.{phase.name}.{member}.{name}': p.grad.clone() for name, p in module.named_parameters() if p.grad is not None})
nets = dict(modules, D_ema=D_ema) if family == 'insgen' else modules
import re
state = lambda module: {name: x for name, x in misc.named_params_and_buffers(module) if not re.fullmatch(training_loop.RANK_LOCAL_BUFFERS, name)}
torch.save(dict(grads=grads, **{name: state(module) for name, module in nets.items()}), out)
'''

# A worker with everything on: the adaptive diffusion (from p 0.3, adapted every 2 minibatches to the r_d gathered from
# every rank, as the loop does; its pool drawn alike on every rank), style mixing,
# lazy path length and R1 (every 2 minibatches), G_ema with ramp-up. Every random draw of the loss and the diffusion
# comes from a tape: the draw for the global minibatch, seeded by (step, call), of which each rank takes its own rows,
# so that 2 ranks of 4 images see what 1 process of 8 sees. The path-length running mean is of the global minibatch.
# Path length on the whole minibatch (pl_batch_shrink 1): with 2 it takes the first half of each rank's images, which
# are other images than the first half of the global minibatch (the same number, drawn alike).
_FULL_WORKER = r'''
import sys, torch
rank, world, init_file, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
torch.set_num_threads(1)
from training import training_loop
from training.diffusion import Diffusion
from training.loss import StyleGAN2Loss
from training.networks_stylegan2 import Generator, Discriminator
from torch_utils import misc, training_stats
from torch_utils.ops import conv2d_gradfix
conv2d_gradfix.enabled = True
if world > 1:
    torch.distributed.init_process_group('gloo', init_method='file://' + init_file, rank=rank, world_size=world)

tape = dict(step=0, call=0)
def from_tape(size, draw):
    tape['call'] += 1
    generator = torch.Generator().manual_seed(1000 * tape['step'] + tape['call'])
    size = list(size)
    if len(size) == 0:
        return draw(size, generator)
    rows = size[0]
    return draw([rows * world] + size[1:], generator)[rank * rows:(rank + 1) * rows]
randint = torch.randint
torch.randn_like = lambda x, **kwargs: from_tape(x.shape, lambda size, g: torch.randn(size, generator=g, dtype=x.dtype))
torch.rand = lambda size, **kwargs: from_tape(size, lambda size, g: torch.empty(size).uniform_(generator=g))
torch.randint = lambda *args, **kwargs: from_tape(args[-1], lambda size, g: randint(*args[:-1], size, generator=g))

torch.manual_seed(0)
G = Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=1, mapping_kwargs=dict(num_layers=1),
              channel_base=128, channel_max=8, use_noise=False)
D = Discriminator(c_dim=0, img_resolution=16, img_channels=1, channel_base=128, channel_max=8, epilogue_kwargs=dict(mbstd_group_size=1))
G.requires_grad_(False); D.requires_grad_(False)
G_ema = misc.deepcopy_module(G).eval()
diffusion = Diffusion(t_max=100, noise_sd=0.5, seed=7, target=0.2, ada_kimg=0.1)
diffusion.p = 0.3
diffusion.update_T()
training_stats.init_multiprocessing(rank=rank, sync_device=None)
signs = training_stats.Collector(regex='Loss/signs/real')
# Adam with eps 1: steps linear in the gradients (lr g / (|g| + 1)), where eps 1e-8 would make the first steps lr sign(g)
# and turn the rounding of a near-zero gradient into a full step.
opt = dict(class_name='torch.optim.Adam', lr=0.01, betas=[0.0, 0.99], eps=1.0)
phases = training_loop.make_phases(modules=dict(G=G, D=D), opt_kwargs=dict(G=opt, D=opt), reg_intervals=dict(G=2, D=2))
loss = StyleGAN2Loss(device=torch.device('cpu'), G=G, D=D, diffusion=diffusion, r1_gamma=1, style_mixing_prob=0.9, pl_weight=2, pl_batch_shrink=1)
pl_means, r_ds = [], []
for step in range(4):
    tape.update(step=step, call=0)
    data = torch.Generator().manual_seed(100 + step)
    real = torch.empty([8, 1, 16, 16]).uniform_(generator=data) * 2 - 1
    z = torch.randn([8, 8], generator=data)
    c = torch.zeros([8, 0])
    per_rank = 8 // world
    sl = slice(rank * per_rank, (rank + 1) * per_rank)
    for phase in phases:
        if step % phase.interval == 0:
            training_loop.run_phase(phase=phase, loss=loss, rounds=[(real[sl], c[sl], z[sl], c[sl])], cur_nimg=step * 8, num_gpus=world)
    training_loop.update_ema(G_ema=G_ema, G=G, batch_size=8, ema_kimg=0.01, ema_rampup=0.05, cur_nimg=step * 8)
    pl_means.append(float(loss.pl_mean))
    if step % 2 == 1: # the loop's adaptation: r_d = E[sign(D(x_t real))] over both minibatches and every rank
        signs.update()
        diffusion.adapt(signs.mean('Loss/signs/real'), 8 * 2)
        r_ds.append(signs.mean('Loss/signs/real'))
torch.save(dict(G=dict(G.named_parameters()), D=dict(D.named_parameters()), G_ema=dict(G_ema.named_parameters()), pl_means=pl_means, r_ds=r_ds, diffusion=diffusion.get_state()), out)
'''

def run_workers(tmp_path, world, rounds_per_rank, family='stylegan2'):
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, OMP_NUM_THREADS='1')
    init_file = tmp_path / f'init-{family}-{world}-{rounds_per_rank}'
    outs = [tmp_path / f'out-{family}-{world}-{rounds_per_rank}-{rank}.pt' for rank in range(world)]
    procs = [subprocess.Popen([sys.executable, '-c', _WORKER, str(rank), str(world), str(rounds_per_rank), str(init_file), str(out), family],
                              cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for rank, out in enumerate(outs)]
    for proc in procs:
        output, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, output
    return [torch.load(out) for out in outs]

def assert_close_dicts(a, b, **tol):
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], msg=lambda m: f'{key}: {m}', **tol)

@pytest.mark.slow('several processes (gloo ranks or spawned trainings)')
def test_two_ranks_equal_one_process(tmp_path):
    one, = run_workers(tmp_path, world=1, rounds_per_rank=1)            # 1 x batch 8
    accum, = run_workers(tmp_path, world=1, rounds_per_rank=2)          # 1 x 2 rounds of 4
    rank0, rank1 = run_workers(tmp_path, world=2, rounds_per_rank=1)    # 2 x 4
    # The ranks agree exactly: gradients are all-reduced before every step.
    for key in ['grads', 'G', 'D']:
        assert_close_dicts(rank0[key], rank1[key], rtol=0, atol=0)
    # And match the single process up to float reassociation.
    for other in [accum, rank0]:
        for key in ['grads', 'G', 'D']:
            assert_close_dicts(one[key], other[key], rtol=1e-4, atol=1e-6)
    assert len(one['grads']) > 0 and any(name.endswith('Dboth.D.b4.out.weight') for name in one['grads'])

@pytest.mark.slow('several processes (gloo ranks or spawned trainings)')
def test_insgen_two_ranks_equal_one_process(tmp_path):
    # InsGen's heads step with D; each rank enqueues the keys of the whole global minibatch in rank order, so the
    # queues (6 slots, 8 keys a step: wrapping) agree across ranks exactly and with the single process. (Gradient
    # accumulation is another matter: each round enqueues and steps the key encoder, as in the InsGen fork.)
    one, = run_workers(tmp_path, world=1, rounds_per_rank=1, family='insgen')
    rank0, rank1 = run_workers(tmp_path, world=2, rounds_per_rank=1, family='insgen')
    names = ['grads', 'G', 'D', 'DHead', 'GHead', 'D_ema']
    for key in names:
        assert_close_dicts(rank0[key], rank1[key], rtol=0, atol=0)
        assert_close_dicts(one[key], rank0[key], rtol=1e-4, atol=1e-6)
    for head in ['DHead', 'GHead']:
        assert one[head]['queue_ptr'].item() == 3 * 8 % 6 and any(name.startswith(f'2.Dboth.{head}.mlp') for name in one['grads'])

def run_full_workers(tmp_path, world):
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, OMP_NUM_THREADS='1')
    outs = [tmp_path / f'full-{world}-{rank}.pt' for rank in range(world)]
    procs = [subprocess.Popen([sys.executable, '-c', _FULL_WORKER, str(rank), str(world), str(tmp_path / f'init-full-{world}'), str(out)],
                              cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for rank, out in enumerate(outs)]
    for proc in procs:
        output, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, output
    return [torch.load(out) for out in outs]

@pytest.mark.slow('several processes (gloo ranks or spawned trainings)')
def test_two_ranks_equal_one_process_with_everything_on(tmp_path):
    # Diffusion, style mixing, lazy path length and R1, G_ema: 2 ranks x 4 equal 1 process x 8 after 4 minibatches,
    # the ranks exactly, the single process to float reassociation (1e-4 relative); the path-length running mean too.
    one, = run_full_workers(tmp_path, world=1)
    rank0, rank1 = run_full_workers(tmp_path, world=2)
    for key in ['G', 'D', 'G_ema']:
        assert_close_dicts(rank0[key], rank1[key], rtol=0, atol=0)
        assert_close_dicts(one[key], rank0[key], rtol=1e-4, atol=1e-5)
    # The diffusion adapted twice to r_d of the global minibatches (p 0.3 -/+ 0.16 each time), alike.
    np.testing.assert_allclose(one['r_ds'], rank0['r_ds'], rtol=1e-6)
    assert one['diffusion'] == rank0['diffusion'] == rank1['diffusion'] and one['diffusion']['p'] != 0.3
    assert rank0['pl_means'] == rank1['pl_means'] and all(m > 0 for m in one['pl_means'])
    np.testing.assert_allclose(one['pl_means'], rank0['pl_means'], rtol=1e-5)

#----------------------------------------------------------------------------

@pytest.mark.parametrize('args', [['--cfg', 'demo'], ['--cfg', 'fastgan_demo'], ['--cfg', 'demo', '--insgen'], ['--cfg', 'demo', '--dudgan', '--cond', '1']])
@pytest.mark.slow('several processes (gloo ranks or spawned trainings)')
def test_train_cli_two_processes(tmp_path, args):
    # train.py --gpus 2 spawns 2 gloo ranks on the CPU; the loop checks at each snapshot that every network (InsGen's
    # heads with their queues, D_ema; DuDGAN's C) and the diffusion states (p, T, pool; DuDGAN's diffusion_C too) agree
    # across ranks, and fails the job otherwise. ProjectedGAN: batch-norm statistics are each rank's own (as w_avg
    # is), everything else must agree.
    out = tmp_path / 'runs'
    cmd = [sys.executable, os.path.join(REPO_ROOT, 'train.py'), '--outdir', str(out), '--gpus', '2', '--batch', '8', *args,
           '--kimg', '0.032' if 'fastgan_demo' in args else '0.048', '--tick', '0.016', '--snap', '1', '--ada_kimg', '1', '--target', '0.05']
    proc = subprocess.run(cmd, cwd=str(tmp_path), env=dict(os.environ, OMP_NUM_THREADS='1'), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir, = [out / name for name in os.listdir(out)]
    names = os.listdir(run_dir)
    assert 'network-snapshot-000000.pkl' in names and 'log.txt' in names
    log = (run_dir / 'log.txt').read_text()
    assert log.count('tick ') >= 3 and 'Exiting...' in log

#----------------------------------------------------------------------------

@pytest.mark.slow('several processes (gloo ranks or spawned trainings)')
def test_failing_rank_stops_the_job(tmp_path):
    # One image is truncated after its header: the constructor's header scan passes, and the rank whose share of the
    # data holds it fails when decoding. The other rank is blocked in a collective; the job must still end, non-zero,
    # with the failing file named, well before the distributed timeout.
    data = tmp_path / 'data'
    data.mkdir()
    rnd = np.random.RandomState(0)
    for i in range(16):
        PIL.Image.fromarray(rnd.randint(0, 256, [16, 16], dtype=np.uint8)).save(data / f'img{i:02d}.png')
    blob = (data / 'img05.png').read_bytes()
    (data / 'img05.png').write_bytes(blob[:len(blob) // 2])
    cmd = [sys.executable, os.path.join(REPO_ROOT, 'train.py'), '--outdir', str(tmp_path / 'runs'), '--data', str(data), '--cfg', 'demo',
           '--gpus', '2', '--batch', '8', '--kimg', '1', '--tick', '0.016', '--snap', '100', '--workers', '0']
    proc = subprocess.run(cmd, cwd=str(tmp_path), env=dict(os.environ, OMP_NUM_THREADS='1'), capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr # the ranks' stderr goes through dnnlib's Logger, to stdout
    assert 'Traceback' not in out, out[-3000:] # the exit code is the first rank's to be seen ending: 2 or 1
    assert any(line.startswith('train.py: error: rank ') and 'img05.png: cannot decode image' in line for line in out.splitlines()), out[-3000:]

@pytest.mark.slow('several processes (gloo ranks or spawned trainings)')
def test_two_process_resume_is_exact(tmp_path):
    # A 2-process run stopped after 3 of 6 minibatches (a tick boundary of the full run) and continued with
    # --resume=latest ends bit-identical to the same 2-process run never stopped: weights, optimizer and diffusion
    # states (each rank's RNG states travel in the snapshot).
    def train(outdir, kimg, *extra):
        cmd = [sys.executable, os.path.join(REPO_ROOT, 'train.py'), '--outdir', str(outdir), '--gpus', '2', '--batch', '8', '--kimg', str(kimg),
               '--tick', '0.016', '--snap', '1', '--ada_kimg', '1', '--target', '0.05', '--metrics', 'none', *extra]
        proc = subprocess.run(cmd, cwd=str(tmp_path), env=dict(os.environ, OMP_NUM_THREADS='1'), capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return proc.stdout
    train(tmp_path / 'straight', 0.048)
    train(tmp_path / 'stopped', 0.024)
    out = train(tmp_path / 'stopped', 0.048, '--resume', 'latest')
    assert 'no longer exact' not in out and 'not bit-exactly' not in out
    load = lambda outdir, run: pickle.loads((outdir / sorted(os.listdir(outdir))[run] / 'network-snapshot-000000.pkl').read_bytes())
    straight, resumed = load(tmp_path / 'straight', 0), load(tmp_path / 'stopped', 1)
    assert resumed['resume_state']['cur_nimg'] == straight['resume_state']['cur_nimg'] == 48
    for name in ['G', 'D', 'G_ema']:
        a, b = straight[name].state_dict(), resumed[name].state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert straight['diffusion_state'] == resumed['diffusion_state'] and straight['diffusion_state']['p'] > 0
    for opt in ['G', 'D']:
        a, b = straight['resume_state']['optimizers'][opt]['state'], resumed['resume_state']['optimizers'][opt]['state']
        assert a.keys() == b.keys() and all(torch.equal(a[k]['exp_avg_sq'], b[k]['exp_avg_sq']) for k in a), opt

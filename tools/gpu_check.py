"""Acceptance check for a machine with a CUDA GPU, in one command: the custom kernels, mixed precision, DDP and speed.

Everything else in this project is tested on CPUs; this script is what to run first when a GPU is at hand. Steps:
  1. environment: GPU, memory, compute capability, CUDA, PyTorch, ninja;
  2. ops: each CUDA kernel of torch_utils/ops built (with ninja, timed) and compared with its reference implementation
     on several shapes, float32 and float16, output and gradients;
  3. networks: StyleGAN2 G and D (cifar, stylegan2), StyleGAN3 T and R, FastGAN with the projected D: forward and
     backward with the kernels equal, within float16 tolerance, to the same networks with every op on its reference;
  4. training: a few ticks of the demo and cifar presets at 32 px as train.py --gpus=1 runs them (mixed precision):
     finite losses, p moving, a snapshot that loads in a fresh process;
  5. ddp: with 2 or more GPUs, the training loop's phases on 2 NCCL ranks equal to 1 process with the same global batch;
  6. speed: training and generation images/s of the cifar and stylegan2 presets at 32 and 256 px, float16 and float32,
     and the share of GPU time in the custom kernels (torch.profiler; benchmarks/bench_train.py measures).
A progress line per step goes to stdout, the details to <out>.log, every number with a pass/fail per step to one JSON
report; the exit code is 1 if any step failed, 2 without a CUDA device.

    python tools/gpu_check.py --quick                    # under 3 minutes once the kernels are built
    python tools/gpu_check.py --out=gpu_check.json       # everything, under 10 minutes

run_checks() is the same check as a function: the test suite runs it on the CPU, where every op takes its reference."""

import contextlib
import copy
import glob
import json
import math
import os
import pickle
import re
import subprocess
import sys
import tempfile
import time
import warnings
from typing import Callable, Optional

import click
import numpy as np
import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

import dnnlib                                                   # noqa: E402 (needs the repository root on sys.path)
import train                                                    # noqa: E402
from benchmarks import bench_train                              # noqa: E402
from dnnlib.cli import run_cli                                  # noqa: E402
from torch_utils import misc                                    # noqa: E402
from torch_utils.ops import bias_act                            # noqa: E402
from torch_utils.ops import conv2d_gradfix                      # noqa: E402
from torch_utils.ops import cuda_kernels                        # noqa: E402
from torch_utils.ops import filtered_lrelu                      # noqa: E402
from torch_utils.ops import upfirdn2d                           # noqa: E402
from training import training_loop                              # noqa: E402
from training.loss import StyleGAN2Loss                         # noqa: E402
from training.networks_stylegan2 import Discriminator, Generator    # noqa: E402

# Tolerances on relative_error (largest difference over max(1, largest reference magnitude)): float32 as the GPU test of
# tests/torch_utils/ops/test_cuda_ops.py, float16 as the kernels' self-check (cuda_kernels.check_against_reference).
OP_TOL = {torch.float32: 1e-4, torch.float16: 2e-2}
NET_TOL = 2e-2                          # networks with float16 layers, kernels vs reference
SNAPSHOT_TOL = 2e-2                     # G_ema's images in a fresh process vs this one (other cuDNN algorithms, float16)
DDP_TOL = dict(rtol=1e-4, atol=1e-5)    # tests/test_distributed.py, everything on: 2 ranks vs 1 process

SELF_CHECKS = {'bias_act': bias_act._self_check, 'upfirdn2d': upfirdn2d._self_check, 'filtered_lrelu': filtered_lrelu._self_check}

# What each step covers. --quick takes QUICK; the test suite passes smaller ones to run_checks().
FULL = dnnlib.EasyDict(
    op_shapes       = [[4, 512, 16, 16], [8, 128, 64, 64], [2, 32, 256, 256], [3, 5, 7, 9]],   # x of each op comparison
    networks        = [('cifar', 32), ('stylegan2', 256), ('stylegan3-t', 256), ('stylegan3-r', 256), ('fastgan', 256)],
    net_batch       = 4,                # images per network comparison
    train           = ['demo', 'cifar'],    # presets trained on the built-in digits (32 px)
    train_args      = ['--kimg=0.512', '--tick=0.128'],    # further train.py options of every training run
    ddp_batch       = 16,               # global batch of the DDP comparison
    ddp_steps       = 3,
    speed           = [(cfg, res, fp32) for cfg in ['cifar', 'stylegan2'] for res in [32, 256] for fp32 in [False, True]],
    speed_batch     = None,             # None: the preset's
    speed_cbase     = None,             # None: the preset's channel_base
    speed_iters     = 5,
    speed_warmup    = 2,
    speed_peaks     = True,             # also the peak matmul/conv FLOP/s and the fraction of it reached
)
QUICK = dnnlib.EasyDict(FULL,
    op_shapes       = [[4, 512, 16, 16], [3, 5, 7, 9]],
    networks        = [('cifar', 32), ('stylegan2', 64), ('stylegan3-t', 64), ('stylegan3-r', 64), ('fastgan', 256)],
    net_batch       = 2,
    ddp_steps       = 2,
    speed           = [(cfg, 32, fp32) for cfg in ['cifar', 'stylegan2'] for fp32 in [False, True]],
    speed_iters     = 3,
    speed_warmup    = 1,
)

#----------------------------------------------------------------------------

def _finite(*values) -> bool:
    return all(value is not None and math.isfinite(value) for value in values)

def _grads(outputs: torch.Tensor, inputs: list, dy: torch.Tensor) -> list:
    """Gradients of sum(outputs * dy) with respect to inputs, zeros where unused."""
    grads = torch.autograd.grad(outputs, inputs, dy, allow_unused=True)
    return [torch.zeros_like(x) if g is None else g for x, g in zip(inputs, grads)]

#----------------------------------------------------------------------------

def check_environment(device: torch.device) -> dict:
    """GPU, memory, compute capability, CUDA and PyTorch versions; fails on CUDA without ninja (no kernel builds)."""
    import torch.utils.cpp_extension
    info = dict(torch=torch.__version__, cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(), python=sys.version.split()[0],
                ninja=torch.utils.cpp_extension.is_ninja_available(), cuda_home=torch.utils.cpp_extension.CUDA_HOME)
    if device.type != 'cuda':
        return dict(passed=True, device=bench_train.cpu_name(), **info)
    props = torch.cuda.get_device_properties(device)
    return dict(passed=info['ninja'], device=props.name, memory_gib=round(props.total_memory / 2**30, 1), compute_capability=f'{props.major}.{props.minor}',
                gpus=torch.cuda.device_count(), **info)

#----------------------------------------------------------------------------

def op_cases(device: torch.device) -> dict:
    """op -> {label: fn(x, b, impl)}: the calls the networks make (StyleGAN2's bias/activation/clamp and resampling
    with [1, 3, 3, 1], StyleGAN3's 12-tap filtered leaky ReLU) and a few others."""
    f4 = upfirdn2d.setup_filter([1, 3, 3, 1], device=device)
    f12 = upfirdn2d.setup_filter(np.kaiser(12, 6), device=device, separable=True)
    return {
        'bias_act': {
            'lrelu clamp=256':      lambda x, b, impl: bias_act.bias_act(x, b, act='lrelu', clamp=256, impl=impl),
            'linear gain=0.5':      lambda x, b, impl: bias_act.bias_act(x, b, act='linear', gain=0.5, impl=impl),
            'swish no bias':        lambda x, b, impl: bias_act.bias_act(x, act='swish', impl=impl),
        },
        'upfirdn2d': {
            'upsample2d':           lambda x, b, impl: upfirdn2d.upsample2d(x, f4, impl=impl),
            'downsample2d':         lambda x, b, impl: upfirdn2d.downsample2d(x, f4, impl=impl),
            'filter2d 12 taps':     lambda x, b, impl: upfirdn2d.filter2d(x, f12, impl=impl),
        },
        'filtered_lrelu': {
            'up=2 down=2 12 taps':  lambda x, b, impl: filtered_lrelu.filtered_lrelu(x, f12, f12, b, up=2, down=2, padding=11, clamp=256, impl=impl),
            'no filters':           lambda x, b, impl: filtered_lrelu.filtered_lrelu(x, b=b, slope=0.1, impl=impl),
        },
    }

def check_ops(device: torch.device, sizes: dict, log: Callable) -> dict:
    """Each op with impl='cuda' against impl='ref': outputs and gradients (of x and b) in float32 and float16."""
    torch.backends.cudnn.allow_tf32 = False # full float32 convolutions in the references
    torch.backends.cuda.matmul.allow_tf32 = False
    results = dict()
    for op, cases in op_cases(device).items():
        record = dict(build_s=None, warnings=[], cases=[])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always', RuntimeWarning)
            if device.type == 'cuda': # the build with ninja (or the build cache) and the self-check, timed
                start = time.time()
                cuda_kernels.load(op, SELF_CHECKS[op], device)
                record['build_s'] = round(time.time() - start, 1)
            for label, fn in cases.items():
                for shape in sizes.op_shapes:
                    for dtype in [torch.float32, torch.float16]:
                        gen = torch.Generator().manual_seed(len(record['cases']))
                        x = torch.randn(shape, generator=gen).to(device, dtype)
                        b = torch.randn([shape[1]], generator=gen).to(device, dtype)
                        outs = dict()
                        for impl in ['cuda', 'ref']:
                            inputs = [x.clone().requires_grad_(), b.clone().requires_grad_()]
                            y = fn(*inputs, impl)
                            dy = torch.randn(y.shape, generator=torch.Generator().manual_seed(1)).to(device, dtype)
                            outs[impl] = [y] + _grads(y, inputs, dy)
                        errors = [cuda_kernels.relative_error(got, exp) for got, exp in zip(outs['cuda'], outs['ref'])]
                        record['cases'].append(dict(case=label, shape=shape, dtype=str(dtype)[6:], output_err=errors[0], grad_x_err=errors[1], grad_b_err=errors[2],
                                                    passed=all(err <= OP_TOL[dtype] for err in errors)))
        record['warnings'] = [str(w.message) for w in caught if str(w.message).startswith('torch_utils.ops.')] # a failed build or self-check
        record['kernel'] = cuda_kernels.loaded(op)
        record['max_err'] = {dtype: max(case[key] for case in record['cases'] if case['dtype'] == dtype for key in ['output_err', 'grad_x_err', 'grad_b_err']) for dtype in ['float32', 'float16']}
        record['passed'] = all(case['passed'] for case in record['cases']) and (record['kernel'] or device.type != 'cuda') and not record['warnings']
        log(f'  {op:<16s} {"PASS" if record["passed"] else "FAIL"}  kernel {"in use" if record["kernel"] else "NOT in use"}, build+check {record["build_s"]} s, '
            f'max error float32 {record["max_err"]["float32"]:.2e}, float16 {record["max_err"]["float16"]:.2e}' + ''.join(f'; {w}' for w in record['warnings']))
        results[op] = record
    return dict(passed=all(record['passed'] for record in results.values()), ops=results)

#----------------------------------------------------------------------------

def check_network(cfg: str, res: int, batch: int, device: torch.device, shrink: Optional[Callable]) -> dict:
    """One preset's G and D (as train.py builds them on one GPU, mixed precision on CUDA) through the preset's loss and
    diffusion (p = 0.5): G's images, D's logits and every gradient of sum(logits * dy), with the kernels and with every op's reference;
    errors relative to the largest reference magnitude of each (the gradients of each network together), however small."""
    preset, _batch_gpu = train.resolve_preset(cfg, res=res, gpus=1, overrides=dict(gamma=bench_train.required_gamma(cfg)))
    networks = dnnlib.EasyDict({name: dnnlib.EasyDict(kwargs) for name, kwargs in preset.networks.items()})
    if shrink is not None:
        shrink(networks)
    torch.manual_seed(0)
    modules = {name: dnnlib.util.construct_class_by_name(**kwargs, c_dim=0, img_resolution=res, img_channels=3).train().requires_grad_(True).to(device)
               for name, kwargs in networks.items()}
    params = {name: list(module.parameters()) for name, module in modules.items()}
    z = torch.randn([batch, modules['G'].z_dim], generator=torch.Generator().manual_seed(1)).to(device)
    c = torch.zeros([batch, 0], device=device)
    states = {name: copy.deepcopy(module.state_dict()) for name, module in modules.items()}
    outs = dict()
    for kernels in [True, False]:
        cuda_kernels.enabled = kernels
        try:
            for name, module in modules.items(): # the same weights in both passes (spectral norm's power iteration updates buffers)
                module.load_state_dict(states[name])
            torch.manual_seed(2) # the same noise inputs and timesteps in both passes
            diffusion = dnnlib.util.construct_class_by_name(class_name='training.diffusion.Diffusion', **preset.diffusion).to(device)
            diffusion.p = 0.5 # t = 0 gives D's projection head a zero embedding (zero logits) without labels
            diffusion.update_T()
            loss = dnnlib.util.construct_class_by_name(device=device, diffusion=diffusion, **modules, **preset.loss)
            img = loss.run_G(z, c)
            img = img[0] if isinstance(img, tuple) else img # (img, ws) of StyleGAN2Loss
            logits = loss.run_D(img, c)
            dy = torch.randn(logits.shape, generator=torch.Generator().manual_seed(3)).to(device, logits.dtype)
            grads = _grads(logits, sum(params.values(), []), dy)
        finally:
            cuda_kernels.enabled = True
        grads = {name: torch.cat([grads.pop(0).flatten().float() for _param in module_params]) for name, module_params in params.items()}
        outs[kernels] = dict(image=img, logits=logits, **{f'{name}_grads': module_grads for name, module_grads in grads.items()})
    errors = {f'{key}_err': cuda_kernels.relative_error(outs[True][key], outs[False][key], floor=1e-30) for key in outs[True]}
    finite = all(torch.isfinite(t).all().item() for t in outs[True].values())
    return dict(cfg=cfg, res=res, batch=batch, fp16_res=networks.G.get('num_fp16_res', 0) if device.type == 'cuda' else 0, finite=finite, **errors,
                passed=finite and all(err <= NET_TOL for err in errors.values()))

def check_networks(device: torch.device, sizes: dict, log: Callable, shrink: Optional[Callable]) -> dict:
    results = []
    for cfg, res in sizes.networks:
        record = check_network(cfg, res, sizes.net_batch, device, shrink)
        log(f'  {cfg:<12s} {res:>4d} px  {"PASS" if record["passed"] else "FAIL"}  kernels vs reference: ' + ', '.join(f'{key[:-4]} {value:.2e}' for key, value in record.items() if key.endswith('_err')))
        results.append(record)
    kernels = {op: cuda_kernels.loaded(op) for op in SELF_CHECKS}
    return dict(passed=all(record['passed'] for record in results) and (device.type != 'cuda' or all(kernels.values())), kernels_loaded=kernels, networks=results)

#----------------------------------------------------------------------------

def snapshot_images(snapshot: str, device: str) -> torch.Tensor:
    """G_ema's images of a snapshot for 4 fixed latents, noise_mode='const', on device (run here and in a fresh process)."""
    with open(snapshot, 'rb') as f:
        G = pickle.load(f)['G_ema'].eval().requires_grad_(False).to(device)
    z = torch.from_numpy(np.random.RandomState(7).randn(4, G.z_dim)).float().to(device)
    with torch.no_grad():
        return G(z, torch.zeros([4, G.c_dim], device=device), noise_mode='const').float().cpu()

_FRESH_PROCESS = 'import sys, torch; from tools import gpu_check; torch.save(gpu_check.snapshot_images(sys.argv[1], sys.argv[2]), sys.argv[3])'

def _train_process(c: dnnlib.EasyDict, desc: str, outdir: str, log_file: str) -> None:
    """A training run as train.py launches it, in a process of its own, its output (and its ranks') in log_file."""
    fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    train.launch_training(c, desc=desc, outdir=outdir, dry_run=False)

def check_training(cfg: str, device: torch.device, sizes: dict, workdir: str, shrink: Optional[Callable]) -> dict:
    """A few ticks of cfg on the built-in digits (32 px) with --gpus=1: finite losses, p moving, the last snapshot's
    images equal in a fresh process. ada_kimg 1 and target 0.05 make p move within a few minibatches."""
    outdir = os.path.join(workdir, f'train-{cfg}')
    args = ['--outdir', outdir, '--cfg', cfg, '--gpus', '1', '--snap', '1', '--metrics', 'none', '--workers', '1', '--ada_kimg', '1', '--target', '0.05', *sizes.train_args]
    with train.main.make_context('train.py', args) as ctx:
        c, desc = train.build_config(dnnlib.EasyDict(ctx.params))
    if shrink is not None:
        shrink(c.network_kwargs)
    log_file = os.path.join(workdir, f'train-{cfg}.log')
    proc = torch.multiprocessing.get_context('spawn').Process(target=_train_process, args=(c, desc, outdir, log_file))
    start = time.time()
    proc.start()
    proc.join()
    record = dict(cfg=cfg, args=args[2:], exit_code=proc.exitcode, seconds=round(time.time() - start, 1))
    if proc.exitcode != 0:
        with open(log_file) as f:
            return dict(record, passed=False, error=f.read()[-2000:])
    run_dir, = glob.glob(os.path.join(outdir, '*'))
    with open(os.path.join(run_dir, 'stats.jsonl')) as f:
        ticks = [json.loads(line) for line in f]
    losses = [[tick[key]['mean'] for key in ['Loss/G/loss', 'Loss/D/loss'] if key in tick] for tick in ticks[1:]]
    p = [tick['Progress/diffusion_p']['mean'] for tick in ticks if 'Progress/diffusion_p' in tick]
    snapshot = sorted(glob.glob(os.path.join(run_dir, 'network-snapshot-*.pkl')))[-1]
    fresh = os.path.join(workdir, f'fresh-{cfg}.pt')
    subprocess.run([sys.executable, '-c', _FRESH_PROCESS, snapshot, device.type, fresh], cwd=REPO_ROOT, env=dict(os.environ, PYTHONPATH=REPO_ROOT), check=True, capture_output=True)
    fresh_images, images = torch.load(fresh), snapshot_images(snapshot, device.type)
    record.update(ticks=len(ticks), losses_finite=len(losses) > 0 and all(len(tick) == 2 and _finite(*tick) for tick in losses), last_losses=losses[-1] if losses else None,
                  p=p, p_moved=any(value != p[0] for value in p), sec_per_kimg=ticks[-1].get('Timing/sec_per_kimg', {}).get('mean'),
                  snapshot=os.path.basename(snapshot), snapshot_err=cuda_kernels.relative_error(fresh_images, images))
    record['passed'] = record['losses_finite'] and record['p_moved'] and record['snapshot_err'] <= SNAPSHOT_TOL and bool(torch.isfinite(images).all())
    return record

def check_trainings(device: torch.device, sizes: dict, log: Callable, workdir: str, shrink: Optional[Callable]) -> dict:
    results = []
    for cfg in sizes.train:
        record = check_training(cfg, device, sizes, workdir, shrink)
        if 'error' in record:
            log(f'  {cfg:<8s} FAIL  exit code {record["exit_code"]}: {(record["error"].strip().splitlines() or ["no output"])[-1]}')
        else:
            log(f'  {cfg:<8s} {"PASS" if record["passed"] else "FAIL"}  {record["ticks"]} ticks in {record["seconds"]} s, last losses G/D {record["last_losses"]}, '
                f'p {record["p"][0]:.3f} -> {record["p"][-1]:.3f}, snapshot in a fresh process off by {record["snapshot_err"]:.2e}')
        results.append(record)
    return dict(passed=all(record['passed'] for record in results), runs=results)

#----------------------------------------------------------------------------

def _ddp_worker(rank: int, world: int, init_file: str, out: str, device_type: str, batch: int, steps: int) -> None:
    """The training loop's phases (G main, D main with R1) on a tiny deterministic G and D (no noise inputs,
    minibatch-stddev group 1, no diffusion) for a fixed global batch, of which this rank takes its slice; saves the
    gradients of every step and the final parameters. Adam with eps 1 takes steps linear in the gradients."""
    device = torch.device(device_type, rank) if device_type == 'cuda' else torch.device('cpu')
    if device_type == 'cuda':
        torch.cuda.set_device(device)
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    else:
        torch.set_num_threads(1)
    if world > 1:
        torch.distributed.init_process_group('nccl' if device_type == 'cuda' else 'gloo', init_method=f'file://{init_file}', rank=rank, world_size=world)
    conv2d_gradfix.enabled = True
    torch.manual_seed(0)
    G = Generator(z_dim=32, c_dim=0, w_dim=32, img_resolution=32, img_channels=3, mapping_kwargs=dict(num_layers=2), channel_base=2048, channel_max=64, use_noise=False)
    D = Discriminator(c_dim=0, img_resolution=32, img_channels=3, channel_base=2048, channel_max=64, epilogue_kwargs=dict(mbstd_group_size=1))
    G, D = G.requires_grad_(False).to(device), D.requires_grad_(False).to(device)
    loss = StyleGAN2Loss(device=device, G=G, D=D, diffusion=None, r1_gamma=1, style_mixing_prob=0, pl_weight=0)
    opt = dict(class_name='torch.optim.Adam', lr=0.002, betas=[0.0, 0.99], eps=1.0)
    phases = training_loop.make_phases(modules=dict(G=G, D=D), opt_kwargs=dict(G=opt, D=opt), reg_intervals=dict(G=None, D=None))
    per_rank = batch // world
    rows = slice(rank * per_rank, (rank + 1) * per_rank)
    result = dict()
    for step in range(steps):
        data = torch.Generator().manual_seed(100 + step)
        real = torch.rand([batch, 3, 32, 32], generator=data)[rows].to(device) * 2 - 1
        z = torch.randn([batch, 32], generator=data)[rows].to(device)
        c = torch.zeros([per_rank, 0], device=device)
        for phase in phases:
            training_loop.run_phase(phase=phase, loss=loss, rounds=[(real, c, z, c)], cur_nimg=0, num_gpus=world)
            for _member, module, _opt in phase.members:
                result.update({f'{step}.{phase.name}.grad.{name}': param.grad.cpu() for name, param in module.named_parameters() if param.grad is not None})
    for name, module in dict(G=G, D=D).items():
        result.update({f'{name}.{key}': value.cpu() for key, value in misc.named_params_and_buffers(module) if not re.fullmatch(training_loop.RANK_LOCAL_BUFFERS, key)})
    torch.save(result, out.replace('RANK', str(rank)))
    if world > 1:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()

def check_ddp(device: torch.device, sizes: dict, log: Callable, workdir: str) -> dict:
    """2 ranks (NCCL on 2 GPUs; gloo on the CPU) vs 1 process with the same global batch: the ranks agree exactly,
    and with the single process within the DDP test's tolerance."""
    if device.type == 'cuda' and torch.cuda.device_count() < 2:
        return dict(passed=None, skipped=f'needs 2 GPUs, {torch.cuda.device_count()} visible')
    runs = dict()
    for world in [1, 2]:
        out = os.path.join(workdir, f'ddp{world}-RANK.pt')
        torch.multiprocessing.spawn(_ddp_worker, args=(world, os.path.join(workdir, f'ddp{world}.init'), out, device.type, sizes.ddp_batch, sizes.ddp_steps), nprocs=world)
        runs[world] = [torch.load(out.replace('RANK', str(rank))) for rank in range(world)]
    one, (rank0, rank1) = runs[1][0], runs[2]
    ranks_equal = rank0.keys() == rank1.keys() and all(torch.equal(rank0[key], rank1[key]) for key in rank0)
    worst = max((torch.abs(rank0[key].double() - one[key].double()) - DDP_TOL['rtol'] * torch.abs(one[key].double())).max().item() for key in one if one[key].numel() > 0)
    record = dict(backend='nccl' if device.type == 'cuda' else 'gloo', global_batch=sizes.ddp_batch, steps=sizes.ddp_steps, ranks_equal=ranks_equal,
                  tensors=len(one), keys_match=one.keys() == rank0.keys(), worst_excess_over_rtol=worst, tolerance=DDP_TOL)
    record['passed'] = ranks_equal and record['keys_match'] and worst <= DDP_TOL['atol']
    log(f'  {record["backend"]}: 2 ranks {"identical" if ranks_equal else "DIFFER"}; vs 1 process: largest |diff| - rtol |x| = {worst:.2e} (atol {DDP_TOL["atol"]:g}) over {len(one)} tensors')
    return record

#----------------------------------------------------------------------------

def check_speed(device: torch.device, sizes: dict, log: Callable, log_file) -> dict:
    """Training and generation images/s and the custom kernels' share of GPU time, by benchmarks/bench_train.py."""
    results = []
    log(f'  {"cfg":<10s} {"res":>4s} {"precision":<9s} {"batch":>5s} {"train img/s":>11s} {"gen img/s":>10s} {"custom ops":>10s}')
    for cfg, res, fp32 in sizes.speed:
        with contextlib.redirect_stdout(log_file), contextlib.redirect_stderr(log_file):
            rec = bench_train.benchmark(cfg=cfg, res=res, channels=3, batch=sizes.speed_batch, gamma=None, iters=sizes.speed_iters, warmup=sizes.speed_warmup,
                                        diffusion=None, cond=False, fp32=fp32, cbase=sizes.speed_cbase, profile=True, with_peaks=sizes.speed_peaks)
        record = dict(cfg=cfg, res=res, precision='float16' if rec['fp16_res'] > 0 else 'float32', batch=rec['batch'], fp16_res=rec['fp16_res'],
                      **{key: rec.get(key) for key in ['train_img_per_s', 'gen_img_per_s', 'custom_op_share', 'phase_ms', 'train_frac_of_peak', 'gen_frac_of_peak']})
        record['passed'] = _finite(record['train_img_per_s'], record['gen_img_per_s']) and record['train_img_per_s'] > 0 and record['gen_img_per_s'] > 0
        share = '-' if record['custom_op_share'] is None else f'{record["custom_op_share"]:.1%}'
        log(f'  {cfg:<10s} {res:>4d} {record["precision"]:<9s} {record["batch"]:>5d} {record["train_img_per_s"]:>11.1f} {record["gen_img_per_s"]:>10.1f} {share:>10s}')
        results.append(record)
        if device.type == 'cuda':
            torch.cuda.empty_cache()
    return dict(passed=all(record['passed'] for record in results), runs=results)

#----------------------------------------------------------------------------

def run_checks(device: torch.device, sizes: dict, workdir: str, log: Callable = print, log_file=sys.stderr, shrink: Optional[Callable] = None) -> dict:
    """Every step on device; a step that raises fails with its error and the others still run. sizes: FULL, QUICK or
    smaller; shrink(network_kwargs) (tests: tiny widths) edits the networks of steps 3 and 4 in place. Returns the report."""
    steps = [
        ('environment',     lambda: check_environment(device)),
        ('ops',             lambda: check_ops(device, sizes, log)),
        ('networks',        lambda: check_networks(device, sizes, log, shrink)),
        ('training',        lambda: check_trainings(device, sizes, log, workdir, shrink)),
        ('ddp',             lambda: check_ddp(device, sizes, log, workdir)),
        ('speed',           lambda: check_speed(device, sizes, log, log_file)),
    ]
    report = dict(device=device.type, sizes=sizes, steps=dict())
    start = time.time()
    for idx, (name, fn) in enumerate(steps):
        log(f'[{idx + 1}/{len(steps)}] {name}...')
        step_start = time.time()
        try:
            result = fn()
        except Exception as e: # pylint: disable=broad-except
            result = dict(passed=False, error=re.sub(r'\s+', ' ', f'{type(e).__name__}: {e}').strip()[:2000])
        result['seconds'] = round(time.time() - step_start, 1)
        status = {True: 'PASS', False: 'FAIL', None: 'SKIPPED'}[result['passed']]
        detail = result.get('error') or result.get('skipped') or (', '.join(f'{key} {result[key]}' for key in ['device', 'memory_gib', 'compute_capability', 'cuda', 'torch'] if key in result))
        log(f'[{idx + 1}/{len(steps)}] {name}: {status} in {result["seconds"]:.0f} s' + (f' ({detail})' if detail else ''))
        report['steps'][name] = result
        if device.type == 'cuda':
            torch.cuda.empty_cache()
    report['seconds'] = round(time.time() - start, 1)
    report['passed'] = all(step['passed'] is not False for step in report['steps'].values())
    return report

#----------------------------------------------------------------------------

@click.command(context_settings=dict(max_content_width=120))
@click.option('--quick', help='Fewer shapes, networks at 64 px, speed at 32 px only (under 3 minutes once the kernels are built)', is_flag=True)
@click.option('--out',   help='JSON report; the details go to <out>.log', metavar='FILE', default='gpu_check.json', show_default=True)
def main(quick: bool, out: str):
    """Check the CUDA kernels, mixed precision, DDP and speed on this machine's GPU; one JSON report, exit code 1 if any step failed."""
    if not torch.cuda.is_available():
        build = 'a CPU-only build' if torch.version.cuda is None else f'built for CUDA {torch.version.cuda}, but no GPU is visible'
        raise dnnlib.UserError(f'no CUDA device: torch {torch.__version__} is {build}; run it on a machine with an NVIDIA GPU')
    log_path = os.path.splitext(out)[0] + '.log'
    with open(log_path, 'wt') as log_file, tempfile.TemporaryDirectory(prefix='gpu_check-') as workdir:
        print(f'Details in {log_path}', flush=True)
        report = run_checks(torch.device('cuda'), QUICK if quick else FULL, workdir=workdir, log=lambda line: print(line, flush=True), log_file=log_file)
    with open(out, 'wt') as f:
        json.dump(dict(report, quick=quick), f, indent=2, default=str)
    print(f'{"PASSED" if report["passed"] else "FAILED"} in {report["seconds"]:.0f} s; report in {out}')
    if not report['passed']:
        sys.exit(1)

#----------------------------------------------------------------------------

if __name__ == '__main__':
    run_cli(main)

#----------------------------------------------------------------------------

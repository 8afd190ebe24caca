"""Training and generation speed of a preset (any family) with or without the adaptive diffusion, on this machine.

Measures, on CUDA if available else the CPU:
  - training images/s: G main + D main phases, G_ema update and the diffusion's adaptation every iteration, plus
    the lazy regularization phases (path length, R1) amortized at their real intervals (4 and 16 minibatches);
  - generation images/s: G_ema forward without gradients, noise_mode='const';
  - achieved GFLOP/s (FLOPs counted by torch.utils.flop_counter.FlopCounterMode: matmuls and convolutions)
    against the peak of the same machine in the same run, measured by timing large float32 matmuls and a
    dense 3x3 conv2d.

Progress goes to stderr; stdout gets exactly one JSON line. Synthetic data (random uint8 images).

    python benchmarks/bench_train.py                               # demo preset, 32x32 grayscale
    python benchmarks/bench_train.py --cfg=cifar --channels=3 --batch=16
"""

import contextlib
import copy
import json
import math
import os
import platform
import re
import resource
import subprocess
import sys
import statistics
import time
from typing import Optional

import click
import numpy as np
import torch
from torch.utils import flop_counter

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import dnnlib                                                   # noqa: E402 (needs the repository root on sys.path)
import train                                                    # noqa: E402
from dnnlib import malloc                                       # noqa: E402
from dnnlib.cli import run_cli                                  # noqa: E402
from torch_utils import training_stats                          # noqa: E402
from torch_utils.ops import conv2d_gradfix                      # noqa: E402
from torch_utils.ops import grid_sample_gradfix                 # noqa: E402
from training import presets                                    # noqa: E402
from training import training_loop                              # noqa: E402

# The StyleGAN2 presets' knobs as they were before the CPU fast path (--path=reference); the glibc allocator defaults
# come with them through DIFFUSION_GAN_MALLOC=default (dnnlib/malloc.py), float32 by leaving --bf16 off.
REFERENCE_KNOBS = dict(cpu_channels_last=False, fused_modconv='inference_only', demod_matmul=False)
COMPARED = [('reference', False), ('fast', False), ('fast', True)]  # (path, bf16) of --compare, bf16 where the preset has it

ADA_INTERVAL = 4        # diffusion adaptation every 4 minibatches
DEFAULT_GAMMA = 2       # R1 weight where the preset requires --gamma (StyleGAN3)
COND_DIM = 10           # label dimension with --cond (the built-in digits have 10 classes)
CUSTOM_KERNELS = r'bias_act_kernel|upfirdn2d_kernel|lrelu_mask_kernel' # the CUDA kernels of torch_utils/ops/*.cu

#----------------------------------------------------------------------------

def sync(device: torch.device) -> None:
    """Wait for queued device work, so that wall-clock timings cover it."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)

def time_calls(fn, reps: int, device: torch.device) -> float:
    """Mean seconds per call of fn() over reps calls."""
    sync(device)
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    sync(device)
    return (time.perf_counter() - start) / reps

def required_gamma(cfg: str) -> Optional[float]:
    """DEFAULT_GAMMA where the preset has no default R1 weight (StyleGAN3; it changes no cost), else None."""
    return DEFAULT_GAMMA if presets.load_preset(cfg).get('gamma') == presets.REQUIRED else None

def kernel_share(events, pattern: str) -> float:
    """Fraction of the GPU time of profiler events spent in kernels whose names match the regex pattern."""
    kernels = [event for event in events if event.device_type == torch.autograd.DeviceType.CUDA]
    total = sum(event.time_range.elapsed_us() for event in kernels)
    return sum(event.time_range.elapsed_us() for event in kernels if re.search(pattern, event.name)) / max(total, 1e-9)

#----------------------------------------------------------------------------

def conv_backward_flop(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation, transposed, _output_padding,
                       _groups, output_mask, out_shape=None, **_kwargs) -> int:
    """FLOPs of aten.convolution_backward, with the weight gradient of grouped convolutions counted per group.
    torch's own formula counts it as if every group saw all input channels, which overcounts StyleGAN2's fused
    modulated convolutions (groups = batch size) by the batch size."""
    flops = 0
    if output_mask[0]:
        flops += flop_counter.conv_flop_count(grad_out_shape, w_shape, out_shape[0], transposed=not transposed)
    if output_mask[1]:
        # Each weight element meets one input element per sample and convolution position: a multiply and an add.
        positions = (x_shape if transposed else grad_out_shape)[2:]
        flops += 2 * math.prod(w_shape) * x_shape[0] * math.prod(positions)
    return flops

class _GlobalScopeOnly:
    """Stands in for FlopCounterMode's module tracker: every FLOP is attributed to 'Global' only. The tracker's
    backward hooks on module inputs do not support torch.autograd.grad with respect to a leaf (R1 on the reals)."""
    parents = {'Global'}
    def __enter__(self):
        return self
    def __exit__(self, *args):
        return False

def count_flops(fn) -> int:
    """FLOPs of one call of fn(), as FlopCounterMode counts them (matmuls, convolutions and their gradients)."""
    counter = flop_counter.FlopCounterMode(display=False, custom_mapping={torch.ops.aten.convolution_backward: conv_backward_flop})
    counter.mod_tracker = _GlobalScopeOnly()
    with counter:
        fn()
    return counter.get_total_flops()

#----------------------------------------------------------------------------

def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else what the platform module knows."""
    if os.path.isfile('/proc/cpuinfo'):
        with open('/proc/cpuinfo', 'rt') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    return platform.processor() or platform.machine()

#----------------------------------------------------------------------------

def measure_peak(device: torch.device, reps: int, dtype: torch.dtype = torch.float32, budget_s: float = 1.0) -> dict:
    """Peak GFLOP/s of a large square matmul and a dense 3x3 conv2d in dtype (cuBLAS/cuDNN or the CPU's BLAS/oneDNN;
    on the CPU the conv in channels_last, oneDNN's fastest layout). At most reps timed calls and about budget_s
    seconds per op: a CPU without bfloat16 instructions multiplies 1024x1024 bfloat16 matrices in seconds (2.5 s on
    an AMD EPYC with one thread, 80x slower than float32), and then the first call alone is the measurement."""
    if device.type == 'cuda':
        n, conv_shape = 8192, [64, 512, 64, 64]
    else:
        n, conv_shape = 1024, [16, 128, 32, 32]
    memory_format = torch.channels_last if device.type == 'cpu' else torch.contiguous_format
    def tensors(on: torch.device) -> dict:
        x = torch.randn(conv_shape, device=on, dtype=dtype).contiguous(memory_format=memory_format)
        w = torch.randn([conv_shape[1], conv_shape[1], 3, 3], device=on, dtype=dtype).contiguous(memory_format=memory_format)
        return dict(matmul=(torch.mm, torch.randn([n, n], device=on, dtype=dtype), torch.randn([n, n], device=on, dtype=dtype)),
                    conv=(lambda x, w: torch.nn.functional.conv2d(x, w, padding=1), x, w))
    peaks = dict()
    shapes_only = tensors(torch.device('meta')) # for counting FLOPs without running the op once more
    for name, (op, *args) in tensors(device).items():
        flops = count_flops(lambda: op(*shapes_only[name][1:]))
        first = time_calls(lambda: op(*args), 1, device)    # includes cuDNN autotuning, BLAS thread pool start-up
        fits = min(reps, int(budget_s / first))
        peaks[name] = flops / (time_calls(lambda: op(*args), fits, device) if fits >= 1 else first) / 1e9
    return peaks

def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

#----------------------------------------------------------------------------

def benchmark(cfg: str, res: int, channels: int, batch: int, gamma: float, iters: int, warmup: int, diffusion: bool, cond: bool, fp32: bool,
              cbase: Optional[int] = None, path: str = 'fast', bf16: bool = False, profile: bool = False, with_peaks: bool = True) -> dict:
    """Build the preset's networks at res x res x channels and time training and generation; returns the JSON record.
    path: 'fast' (the presets as they are) or 'reference' (REFERENCE_KNOBS: the code before the CPU fast path).
    with_peaks=False leaves out the peak FLOP/s measurement and the fractions of it (seconds on a CPU)."""
    device = torch.device('cuda') if torch.cuda.is_available() else torch.device('cpu')
    torch.manual_seed(0)
    np.random.seed(0)
    # Same backend settings as training_loop: autotuned cuDNN, no TF32, custom-gradient convolutions (R1, path length).
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    conv2d_gradfix.enabled = True
    grid_sample_gradfix.enabled = True

    gamma = gamma if gamma is not None else required_gamma(cfg)
    overrides = dict(batch=batch, gamma=gamma, fmaps=None if cbase is None else cbase / 32768)
    if path == 'reference':
        overrides.update({knob: value for knob, value in REFERENCE_KNOBS.items() if knob in presets.load_preset(cfg)})
    preset, _batch_gpu = train.resolve_preset(cfg, res=res, gpus=1, overrides=overrides, fp32=fp32, bf16=bf16, diffusion=diffusion)
    diffusion = preset.use_diffusion
    batch = preset.batch
    c_dim = COND_DIM if cond else 0
    common_kwargs = dict(c_dim=c_dim, img_resolution=res, img_channels=channels)
    print(f'Building {cfg} networks at {res}x{res}x{channels}, batch {batch}, on {device}...', file=sys.stderr)
    modules = {name: dnnlib.util.construct_class_by_name(**kwargs, **common_kwargs).train().requires_grad_(False).to(device)
               for name, kwargs in preset.networks.items()}
    G, D = modules['G'], modules['D']
    G_ema = copy.deepcopy(G).eval()
    diffusion_module = None
    ada_stats = None
    if diffusion:
        diffusion_module = dnnlib.util.construct_class_by_name(class_name='training.diffusion.Diffusion', **preset.diffusion)
        diffusion_module = diffusion_module.train().requires_grad_(False).to(device)
        ada_stats = training_stats.Collector(regex='Loss/signs/real')
    loss = dnnlib.util.construct_class_by_name(device=device, diffusion=diffusion_module, **modules, **preset.loss)
    phases = {phase.name: phase for phase in training_loop.make_phases(modules=modules, opt_kwargs=preset.optimizers, reg_intervals=preset.reg_intervals)}

    # Synthetic data: random uint8 reals and one-hot labels, converted on the device each iteration as the loop does.
    real_uint8 = torch.randint(0, 256, [batch, channels, res, res], dtype=torch.uint8)
    labels = torch.zeros([batch, c_dim])
    if cond:
        labels[torch.arange(batch), torch.randint(c_dim, [batch])] = 1
    state = dnnlib.EasyDict(batch_idx=0)

    def inputs():
        real_img = real_uint8.to(device).to(torch.float32) / 127.5 - 1
        real_c = labels.to(device)
        gen_z = torch.randn([batch, G.z_dim], device=device)
        gen_c = labels[torch.randperm(batch)].to(device)
        return real_img, real_c, gen_z, gen_c

    # Every minibatch runs the phases of interval 1 (Gmain, Dmain, or Gboth where G has no lazy regularization); the
    # lazy regularization phases come every reg_interval minibatches and are timed on their own.
    every_phases = [phase for phase in phases.values() if phase.interval == 1]
    lazy_phases = {name: phase for name, phase in phases.items() if phase.interval > 1}
    def main_iteration():
        real_img, real_c, gen_z, gen_c = inputs()
        for phase in every_phases:
            training_loop.run_phase(phase, loss, [(real_img, real_c, torch.randn_like(gen_z), gen_c)], cur_nimg=0)
        training_loop.update_ema(G_ema=G_ema, G=G, batch_size=batch, ema_kimg=preset.ema, ema_rampup=None, cur_nimg=0)
        state.batch_idx += 1
        if diffusion and state.batch_idx % ADA_INTERVAL == 0:
            ada_stats.update()
            r_d = ada_stats['Loss/signs/real']
            if np.isfinite(r_d):
                diffusion_module.adapt(r_d, batch * ADA_INTERVAL)

    def reg_phase(name):
        return lambda: training_loop.run_phase(phases[name], loss, [inputs()], cur_nimg=0)

    gen_z = torch.randn([batch, G.z_dim], device=device)
    gen_c = labels.to(device)
    def generate():
        with torch.no_grad():
            G_ema(z=gen_z, c=gen_c, noise_mode='const')

    # Warm-up (cuDNN autotuning, allocator, thread pools); each regularization phase once, so that its code path is warm.
    for idx in range(warmup):
        print(f'Warm-up iteration {idx + 1}/{warmup}...', file=sys.stderr)
        main_iteration()
        if idx == 0:
            for name in lazy_phases:
                reg_phase(name)()
        generate()

    custom_op_share = None
    if profile:
        activities = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if device.type == 'cuda' else [])
        with torch.profiler.profile(activities=activities) as prof:
            main_iteration()
            sync(device)
        print(prof.key_averages().table(sort_by='self_device_time_total' if device.type == 'cuda' else 'self_cpu_time_total', row_limit=25), file=sys.stderr)
        if device.type == 'cuda':
            custom_op_share = kernel_share(prof.events(), CUSTOM_KERNELS)

    # FLOPs of one main iteration, each regularization phase and one generated batch.
    print('Counting FLOPs...', file=sys.stderr)
    flops = dict(main=count_flops(main_iteration), gen=count_flops(generate), **{name: count_flops(reg_phase(name)) for name in lazy_phases})

    # Timing: the regularization phases are timed on their own, as many times as they would run in `iters` training
    # iterations (at least once), and amortized over their intervals: a few iterations give the long-run cost.
    reg_reps = {name: -(-iters // phase.interval) for name, phase in lazy_phases.items()}
    print(f'Timing {iters} iterations, {", ".join(f"{reps} {name}" for name, reps in reg_reps.items()) or "no lazy"} regularization steps, {iters} generated batches...', file=sys.stderr)
    secs = dict(main=time_calls(main_iteration, iters, device), gen=time_calls(generate, iters, device),
                **{name: time_calls(reg_phase(name), reps, device) for name, reps in reg_reps.items()})
    train_sec = secs['main'] + sum(secs[name] / phase.interval for name, phase in lazy_phases.items())
    train_flops = flops['main'] + sum(flops[name] / phase.interval for name, phase in lazy_phases.items())

    max_rss_mb = peak_rss_mb() # before the peak measurement's large matrices
    train_gflops = train_flops / train_sec / 1e9
    gen_gflops = flops['gen'] / secs['gen'] / 1e9
    peak_fields = dict()
    if with_peaks:
        print('Measuring peak matmul and conv2d throughput...', file=sys.stderr)
        peak_reps = max(iters, 5) if device.type == 'cpu' else 20
        peaks = measure_peak(device, reps=peak_reps)
        peak = max(peaks.values())
        peaks_bf16 = measure_peak(device, reps=peak_reps, dtype=torch.bfloat16) if device.type == 'cpu' else None
        peak_fields = dict(
            peak_matmul_gflops=round(peaks['matmul'], 2),
            peak_conv_gflops=round(peaks['conv'], 2),
            train_frac_of_peak=round(train_gflops / peak, 4),
            gen_frac_of_peak=round(gen_gflops / peak, 4),
            **(dict(peak_matmul_gflops_bf16=round(peaks_bf16['matmul'], 2), peak_conv_gflops_bf16=round(peaks_bf16['conv'], 2),
                    train_frac_of_bf16_peak=round(train_gflops / max(peaks_bf16.values()), 4),
                    gen_frac_of_bf16_peak=round(gen_gflops / max(peaks_bf16.values()), 4)) if peaks_bf16 else {}))

    return dict(
        device=device.type,
        device_name=torch.cuda.get_device_name(device) if device.type == 'cuda' else cpu_name(),
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        cfg=cfg,
        resolution=res,
        channels=channels,
        batch=batch,
        gamma=preset.get('gamma'),
        cond=cond,
        diffusion=diffusion,
        path=path,
        malloc_tuned=malloc.tune_malloc(),
        bf16=bf16,
        fp16_res=preset.networks.G.get('num_fp16_res', 0) if device.type == 'cuda' or bf16 else 0,
        G_params=sum(param.numel() for param in G.parameters()),
        D_params=sum(param.numel() for param in D.parameters()),
        train_img_per_s=round(batch / train_sec, 3),
        gen_img_per_s=round(batch / secs['gen'], 3),
        phase_ms={name: round(sec * 1e3, 2) for name, sec in secs.items()},
        main_phases=[phase.name for phase in every_phases],
        reg_intervals=dict(preset.reg_intervals),
        reg_timed_steps=reg_reps,
        train_gflop_per_img=round(train_flops / batch / 1e9, 4),
        gen_gflop_per_img=round(flops['gen'] / batch / 1e9, 4),
        train_gflops=round(train_gflops, 2),
        gen_gflops=round(gen_gflops, 2),
        **peak_fields,
        max_rss_mb=round(max_rss_mb, 1),
        **(dict(custom_op_share=None if custom_op_share is None else round(custom_op_share, 4)) if profile else {}),
        warmup_iters=warmup,
        timed_iters=iters,
    )

#----------------------------------------------------------------------------

def compare_paths(child_args: list, rounds: int, with_bf16: bool) -> dict:
    """Run the reference and the fast path (float32, and bfloat16 where the preset has it) each in a process of its
    own, so that the allocator settings really differ, alternating them `rounds` times so that a busy machine slows
    all alike; returns the medians, their ratios to the reference and each path's peak resident memory."""
    variants = [(path, bf16) for path, bf16 in COMPARED if with_bf16 or not bf16]
    runs = {variant: [] for variant in variants}
    for round_idx in range(rounds):
        for path, bf16 in variants:
            print(f'Round {round_idx + 1}/{rounds}: {path}{" bf16" if bf16 else ""}...', file=sys.stderr)
            cmd = [sys.executable, os.path.abspath(__file__), *child_args, f'--path={path}', f'--bf16={bf16}']
            result = subprocess.run(cmd, env=malloc.child_environment(glibc_defaults=(path == 'reference')), stdout=subprocess.PIPE, text=True)
            if result.returncode != 0:
                raise dnnlib.UserError(f'--compare: the {path} run failed (exit {result.returncode}): {" ".join(cmd)}')
            runs[(path, bf16)].append(json.loads(result.stdout.strip().splitlines()[-1]))

    keys = ['train_img_per_s', 'gen_img_per_s', 'train_gflops', 'gen_gflops', 'train_frac_of_peak', 'gen_frac_of_peak', 'train_frac_of_bf16_peak', 'gen_frac_of_bf16_peak']
    summary = dict()
    for (path, bf16), records in runs.items():
        name = path + ('_bf16' if bf16 else '')
        summary[name] = {key: round(statistics.median(r[key] for r in records), 4) for key in keys if key in records[0]}
        summary[name]['max_rss_mb'] = max(r['max_rss_mb'] for r in records)
        summary[name]['malloc_tuned'] = records[0]['malloc_tuned']
    reference = summary['reference']
    for name, values in summary.items():
        if name != 'reference':
            values['train_speedup'] = round(values['train_img_per_s'] / reference['train_img_per_s'], 3)
            values['gen_speedup'] = round(values['gen_img_per_s'] / reference['gen_img_per_s'], 3)
            values['rss_ratio'] = round(values['max_rss_mb'] / reference['max_rss_mb'], 3)
    first = runs[variants[0]][0]
    setup = {key: first[key] for key in ['device', 'device_name', 'torch', 'threads', 'cfg', 'resolution', 'channels', 'batch', 'diffusion', 'G_params', 'D_params',
                                         'train_gflop_per_img', 'gen_gflop_per_img', 'peak_matmul_gflops', 'peak_conv_gflops', 'peak_matmul_gflops_bf16', 'peak_conv_gflops_bf16'] if key in first}
    return dict(**setup, rounds=rounds, timed_iters=first['timed_iters'], **summary)

#----------------------------------------------------------------------------

@click.command(context_settings=dict(max_content_width=120))
@click.option('--cfg',          help='Preset from configs/', type=click.Choice(presets.preset_names()), default='demo', show_default=True)
@click.option('--res',          help='Image resolution (power of 2, >= 4)', metavar='INT', type=int, default=32, show_default=True)
@click.option('--channels',     help='Image channels', type=click.Choice(['1', '3']), default='1', show_default=True)
@click.option('--batch',        help='Minibatch size [default: preset]', metavar='INT', type=click.IntRange(min=1))
@click.option('--cbase',        help='channel_base of the StyleGAN2 networks (fmaps x 32768) [default: preset]', metavar='INT', type=click.IntRange(min=1))
@click.option('--gamma',        help='R1 weight [default: preset; 2 where the preset requires --gamma]', metavar='FLOAT', type=click.FloatRange(min=0))
@click.option('--iters',        help='Timed training iterations and generated batches', metavar='INT', type=click.IntRange(min=1), default=5, show_default=True)
@click.option('--warmup',       help='Untimed warm-up iterations', metavar='INT', type=click.IntRange(min=0), default=2, show_default=True)
@click.option('--diffusion/--no-diffusion', help='Adaptive diffusion before D [default: preset, on; difgan: off]', default=None)
@click.option('--cond',         help='Conditional networks (10 one-hot classes)', metavar='BOOL', type=bool, default=False, show_default=True)
@click.option('--fp32',         help='Disable mixed precision (CUDA presets with num_fp16_res > 0)', metavar='BOOL', type=bool, default=False, show_default=True)
@click.option('--bf16',         help='CPU: the mixed-precision layers in bfloat16 (as train.py --bf16)', metavar='BOOL', type=bool, default=False, show_default=True)
@click.option('--path',         help='The CPU fast path as the presets have it, or the reference: the code before it (REFERENCE_KNOBS, glibc allocator defaults)', type=click.Choice(['fast', 'reference']), default='fast', show_default=True)
@click.option('--compare',      help='Run the reference, the fast path and (where the preset has it) the fast path with --bf16, each in its own process, alternating; print their speeds and ratios', is_flag=True)
@click.option('--rounds',       help='--compare: runs of each path', metavar='INT', type=click.IntRange(min=1), default=2, show_default=True)
@click.option('--profile',      help='Print the operators of one training iteration, by self CPU (CUDA: GPU) time, to stderr; on CUDA, the GPU time share of the custom kernels in the JSON', is_flag=True)
def main(cfg: str, res: int, channels: str, batch: int, cbase: int, gamma: float, iters: int, warmup: int, diffusion: bool, cond: bool, fp32: bool,
         bf16: bool, path: str, compare: bool, rounds: int, profile: bool):
    """Benchmark training and generation speed and the fraction of peak FLOP/s achieved; prints one JSON line."""
    if res < 4 or res & (res - 1) != 0:
        raise dnnlib.UserError(f'--res={res}: expected a power of 2, at least 4')
    if compare:
        child_args = [f'--cfg={cfg}', f'--res={res}', f'--channels={channels}', f'--iters={iters}', f'--warmup={warmup}', f'--cond={cond}', f'--fp32={fp32}']
        child_args += [f'--{name}={value}' for name, value in dict(batch=batch, cbase=cbase, gamma=gamma).items() if value is not None]
        child_args += [] if diffusion is None else ['--diffusion' if diffusion else '--no-diffusion']
        try:
            train.resolve_preset(cfg, res=res, gpus=1, overrides=dict(batch=batch, gamma=gamma if gamma is not None else DEFAULT_GAMMA), bf16=True, fp32=fp32)
            with_bf16 = not torch.cuda.is_available()
        except dnnlib.UserError:
            with_bf16 = False
        print(json.dumps(compare_paths(child_args, rounds=rounds, with_bf16=with_bf16)))
        return
    if path == 'reference':
        malloc.require_glibc_defaults('--path=reference', hint='use --compare')
    # Anything the networks or custom ops print goes to stderr, so that stdout carries only the result.
    with contextlib.redirect_stdout(sys.stderr):
        result = benchmark(cfg=cfg, res=res, channels=int(channels), batch=batch, gamma=gamma, iters=iters, warmup=warmup, diffusion=diffusion, cond=cond, fp32=fp32,
                           cbase=cbase, path=path, bf16=bf16, profile=profile)
    print(json.dumps(result))

#----------------------------------------------------------------------------

if __name__ == '__main__':
    run_cli(main)

#----------------------------------------------------------------------------

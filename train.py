"""Train a GAN with Diffusion-GAN's adaptive diffusion (or without it, as a baseline).

With no --data, trains on the built-in demo data (scikit-learn's handwritten digits, 32x32) with the
'demo' preset, small enough for a laptop CPU. Presets (--cfg) live in configs/*.yaml. A run that was stopped
continues exactly with the same command plus --resume=latest (see training/training_loop.py); with --resume=auto the
same command serves the first start and every restart (torchrun --max-restarts, requeued cluster jobs), continuing
in the same run directory. SIGTERM or SIGUSR1 stops every rank with a snapshot (training/preemption.py)."""

import datetime
import json
import os
import re
import signal
import sys
import tempfile
from typing import Optional, Tuple

import click
import torch

import dnnlib
import legacy
from dnnlib.cli import check_output_path, run_cli
from dnnlib.malloc import tune_malloc
from metrics import metric_main
from torch_utils import training_stats
from torch_utils import custom_ops
from training import dataset
from training import preemption
from training import presets
from training import snapshot
from training import training_loop

ADA_KIMG = 500      # StyleGAN2-ADA's and StyleGAN3's speed of ADA's p, for --no-diffusion --aug=ada

# Knobs of a preset that the command line sets, and the option that sets each.
KNOB_OPTIONS = dict(batch='--batch', gamma='--gamma', kimg='--kimg', d_pos='--d_pos', freezed='--freezed', rqs='--rqs', fqs='--fqs', cl_on_g='--no_cl_on_g',
                    t_max_c='--t_max_c', steps='--steps', eta='--eta', t_embed='--t_embed')

# Overlays (configs/overlays/) and the train.py switch of each.
OVERLAY_OPTIONS = dict(insgen='--insgen', dudgan='--dudgan')

#----------------------------------------------------------------------------

def resolve_preset(cfg: str, res: int, gpus: int, batch_gpu: Optional[int] = None, overrides: Optional[dict] = None,
                   fp32: bool = False, nhwc: bool = False, bf16: bool = False, transfer: bool = False, overlays: tuple = (),
                   num_images: Optional[int] = None, mirror: bool = False, diffusion: Optional[bool] = None) -> Tuple[dnnlib.EasyDict, int]:
    """The preset configs/CFG.yaml evaluated for this run (shared by train.py and benchmarks/): returns (preset,
    batch_gpu). overrides: knob -> value from the command line (None values ignored); transfer: the run starts from
    the weights of another run (--resume of a pickle without a resume state); overlays: configs/overlays/ names
    merged over the preset; num_images, mirror: the dataset's size without x-flips and whether they are on;
    diffusion: --diffusion / --no-diffusion, None = the preset's default (its diffusion.enabled, else on), which
    the preset's expressions see as `diffusion` and which is returned as preset.use_diffusion (preset.diffusion
    keeps only Diffusion's kwargs).
    UserError on bad input."""
    if bf16 and fp32:
        raise dnnlib.UserError('--bf16 and --fp32: choose one (--fp32 runs every layer in float32)')
    spec = presets.load_preset(cfg, overlays=overlays)
    enabled = spec.get('diffusion', {}).get('enabled', True)
    if enabled == 'never' and diffusion:
        raise dnnlib.UserError(f'--diffusion: --cfg={cfg} has its own forward process (diffusion.enabled: never in {presets.preset_path(cfg)}); leave --diffusion out')
    diffusion = (enabled is True) if diffusion is None else diffusion
    overrides = {key: value for key, value in (overrides or {}).items() if value is not None}
    dataset_facts = dict(num_images=num_images, mirror=mirror) if num_images is not None else {}
    knobs = presets.resolve(spec, cfg, provided=dict(res=res, gpus=gpus, **dataset_facts), overrides=overrides, option_names=KNOB_OPTIONS, sections=False)
    batch = knobs.batch
    if batch < 1 or batch % gpus != 0:
        raise dnnlib.UserError(f'--batch={batch} must be a positive multiple of --gpus={gpus}')
    batch_gpu = batch_gpu or batch // gpus
    if batch_gpu < 1 or batch % (batch_gpu * gpus) != 0:
        raise dnnlib.UserError(f'--batch={batch} must be a multiple of --batch-gpu={batch_gpu} times --gpus={gpus}')
    if 'mbstd' in knobs and batch_gpu % min(knobs.mbstd, batch_gpu) != 0:
        raise dnnlib.UserError(f'--batch-gpu={batch_gpu} must be a multiple of the minibatch-stddev group size {knobs.mbstd} of --cfg={cfg}')
    preset = presets.resolve(spec, cfg, provided=dict(res=res, gpus=gpus, batch_gpu=batch_gpu, fp32=fp32, nhwc=nhwc, bf16=bf16, transfer=transfer, diffusion=diffusion, **dataset_facts),
                             overrides=overrides, option_names=KNOB_OPTIONS)
    preset.diffusion = dnnlib.EasyDict({key: value for key, value in preset.diffusion.items() if key != 'enabled'})
    preset.use_diffusion = diffusion
    if bf16 and not any(kwargs.get('cpu_bf16') or kwargs.get('block_kwargs', {}).get('cpu_bf16') for kwargs in preset.networks.values()):
        raise dnnlib.UserError(f'--bf16: --cfg={cfg} has no bfloat16 layers (StyleGAN2-family presets with mixed precision have)')
    for knob in ['rqs', 'fqs']:
        if knob in preset and preset[knob] < 1:
            raise dnnlib.UserError(f'{KNOB_OPTIONS[knob]}={preset[knob]}: a queue needs at least 1 negative' + ('' if knob in overrides else f' (5% of {num_images} images; give it)'))
    return preset, batch_gpu

#----------------------------------------------------------------------------

DEFAULT_DDP_TIMEOUT = 10 # minutes, --ddp-timeout: long enough for a slow snapshot or metric on rank 0, far below torch's 30

def launch_training(c: dnnlib.EasyDict, desc: str, outdir: str, dry_run: bool, ddp_timeout: float = DEFAULT_DDP_TIMEOUT) -> None:
    """Print the options, create outdir/NNNNN-desc (or continue in c.run_dir, --resume=auto) and run the training
    processes: one per GPU spawned here (--gpus N), or this process as one rank of a torchrun job (RANK, WORLD_SIZE,
    LOCAL_RANK in the environment). ddp_timeout: minutes a rank waits for the others in a collective."""
    dnnlib.util.Logger(should_flush=True)
    torchrun = 'RANK' in os.environ and 'WORLD_SIZE' in os.environ
    rank = int(os.environ['RANK']) if torchrun else 0
    if torchrun:
        c.num_gpus = int(os.environ['WORLD_SIZE'])
        init_process_group(rank=rank, num_gpus=c.num_gpus, local_rank=int(os.environ.get('LOCAL_RANK', 0)), init_method='env://', timeout=ddp_timeout)

    # Rank 0 picks the run directory; the other ranks of a torchrun job learn it from rank 0.
    if rank == 0 and 'run_dir' not in c:
        prev_run_ids = []
        if os.path.isdir(outdir):
            prev_run_ids = [re.match(r'^\d+', x) for x in os.listdir(outdir)]
            prev_run_ids = [int(x.group()) for x in prev_run_ids if x is not None]
        c.run_dir = os.path.join(outdir, f'{max(prev_run_ids, default=-1) + 1:05d}-{desc}')
    if rank == 0:
        print()
        print('Training options:')
        print(json.dumps(c, indent=2))
        print()
        print(f'Output directory:    {c.run_dir}')
        print(f'Number of GPUs:      {c.num_gpus}')
        print(f'Batch size:          {c.batch_size} images')
        print(f'Training duration:   {c.total_kimg} kimg')
        print(f'Dataset path:        {c.training_set_kwargs.get("path", "built-in digits")}')
        print(f'Dataset size:        {c.training_set_kwargs.max_size} images')
        print(f'Dataset resolution:  {c.training_set_kwargs.resolution}')
        print(f'Dataset labels:      {c.training_set_kwargs.use_labels}')
        print(f'Dataset x-flips:     {c.training_set_kwargs.xflip}')
        print(f'Diffusion:           {c.diffusion_kwargs}')
        print()
    if dry_run:
        if rank == 0:
            print('Dry run; exiting.')
        return

    if rank == 0:
        print('Creating output directory...')
        os.makedirs(c.run_dir, exist_ok=os.path.dirname(c.get('resume_pkl') or '') == c.run_dir)
        with open(os.path.join(c.run_dir, 'training_options.json'), 'wt') as f:
            json.dump(c, f, indent=2)
    if torchrun:
        shared = [c.run_dir if rank == 0 else None]
        torch.distributed.broadcast_object_list(shared, src=0)
        c.run_dir = shared[0]
        training_process(rank=rank, c=c)
        return

    print('Launching processes...')
    torch.multiprocessing.set_start_method('spawn', force=True)
    with tempfile.TemporaryDirectory() as temp_dir:
        if c.num_gpus == 1:
            subprocess_fn(rank=0, c=c, temp_dir=temp_dir, ddp_timeout=ddp_timeout)
            return
        # A stop signal sent to this process alone goes on to the ranks; a preempted job exits with their code.
        for signum in preemption.SIGNALS:
            signal.signal(signum, forward_signal)
        try:
            torch.multiprocessing.spawn(fn=subprocess_fn, args=(c, temp_dir, ddp_timeout), nprocs=c.num_gpus)
        except torch.multiprocessing.ProcessExitedException as err:
            # The rank that exited has said why (training_process); a rank ended by a signal has not.
            if err.signal_name is not None:
                print(f'train.py: error: rank {err.error_index} was killed by {err.signal_name}', file=sys.stderr)
            sys.exit(err.exit_code if err.exit_code > 0 else 1)

#----------------------------------------------------------------------------

def forward_signal(signum, _frame) -> None:
    """Signal handler of the process that spawned the ranks: send the signal on to each of them."""
    for child in torch.multiprocessing.active_children():
        os.kill(child.pid, signum)

def init_process_group(rank: int, num_gpus: int, local_rank: int, init_method: str, timeout: float) -> None:
    """Join the job's process group: NCCL on CUDA, gloo on the CPU; a collective waits timeout minutes at most.
    Under torchrun, the agent's store with keys of this restart only: through env://, the workers of a restart read
    the addresses the workers before them left there, and gloo fails to connect (seen with torch 2.13)."""
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
    backend = 'nccl' if torch.cuda.is_available() else 'gloo'
    timeout = datetime.timedelta(minutes=timeout)
    rendezvous = dict(init_method=init_method)
    if init_method == 'env://' and os.environ.get('TORCHELASTIC_USE_AGENT_STORE') == 'True':
        store = torch.distributed.TCPStore(os.environ['MASTER_ADDR'], int(os.environ['MASTER_PORT']), num_gpus, is_master=False, timeout=timeout)
        rendezvous = dict(store=torch.distributed.PrefixStore(f'train/attempt_{os.environ["TORCHELASTIC_RESTART_COUNT"]}', store))
    torch.distributed.init_process_group(backend=backend, rank=rank, world_size=num_gpus, timeout=timeout, **rendezvous)

def subprocess_fn(rank: int, c: dnnlib.EasyDict, temp_dir: str, ddp_timeout: float) -> None:
    """One process spawned by --gpus N (rank = local GPU index): join the process group through a file, train."""
    if c.num_gpus > 1:
        init_file = os.path.abspath(os.path.join(temp_dir, '.torch_distributed_init'))
        init_process_group(rank=rank, num_gpus=c.num_gpus, local_rank=rank, init_method=f'file://{init_file}', timeout=ddp_timeout)
    training_process(rank=rank, c=c)

def training_process(rank: int, c: dnnlib.EasyDict) -> None:
    """Log to run_dir/log.txt, set up the statistics across ranks, run the loop, leave the process group. Exits
    with preemption.PREEMPTED_EXIT_CODE after a stop signal; with one line and code 1 when another rank is lost, and
    code 2 after a user error (a bad file met by this rank) when there are several ranks."""
    tune_malloc() # spawned ranks start here, not in run_cli
    preemption.install()
    dnnlib.util.Logger(file_name=os.path.join(c.run_dir, 'log.txt') if rank == 0 else None, file_mode='a', should_flush=True)
    sync_device = torch.device('cuda', torch.cuda.current_device()) if c.num_gpus > 1 and torch.cuda.is_available() else None
    training_stats.init_multiprocessing(rank=rank, sync_device=sync_device)
    if rank != 0:
        custom_ops.verbosity = 'none'
    try:
        finished = training_loop.training_loop(rank=rank, **c)
    except dnnlib.UserError as err:
        if c.num_gpus == 1:
            raise # run_cli reports it
        # Said here, by the rank that met it: the other ranks, blocked in a collective, see only a lost peer.
        print(f'train.py: error: rank {rank}: {err}', file=sys.stderr)
        os._exit(2) # as below: not sys.exit, with gloo's threads waiting on the other ranks
    except (torch.distributed.DistError, RuntimeError) as err: # gloo reports a lost peer as a RuntimeError from its sources
        if not isinstance(err, torch.distributed.DistError) and '/gloo/' not in str(err):
            raise
        print(f'train.py: error: rank {rank}: lost the other ranks of the job (one died, hung beyond --ddp-timeout, or was stopped): {type(err).__name__}: {" ".join(str(err).split())[:300]}', file=sys.stderr)
        os._exit(1) # not sys.exit: gloo's threads, still waiting on the lost rank, would hold up or abort the exit
    # All ranks done, then the group torn down before the interpreter exits: left to the exit, gloo's threads can
    # abort a rank ("terminate called without an active exception", seen after InsGen's all_gather).
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    if not finished:
        sys.exit(preemption.PREEMPTED_EXIT_CODE)

#----------------------------------------------------------------------------

def build_config(opts: dnnlib.EasyDict) -> tuple:
    """Turn the command-line options and the preset into training_loop kwargs; raise UserError on bad input."""
    c = dnnlib.EasyDict()

    # Dataset: constructed once here, so that a bad --data is reported before anything is written.
    builtin = opts.data is None or opts.data.startswith(dataset.BUILTIN_PREFIX)
    c.training_set_kwargs = dataset.dataset_kwargs_for_data(opts.data or 'builtin:digits', use_labels=opts.cond, max_size=None, xflip=opts.mirror)
    training_set = dnnlib.util.construct_class_by_name(**c.training_set_kwargs)
    c.training_set_kwargs.resolution = training_set.resolution
    num_images = len(training_set) // (2 if opts.mirror else 1) # x-flips double the length
    if opts.subset is not None:
        if opts.subset > num_images:
            raise dnnlib.UserError(f'--subset={opts.subset}: the dataset has {num_images} images')
        num_images = opts.subset # the training loop's dataset keeps this many (resolution, channels and labels stay)
    c.training_set_kwargs.max_size = num_images
    dataset_name = training_set.name

    # Resume: an exact continuation of a snapshot of ours, or transfer learning from the weights of any pickle.
    transfer = False
    resume_data = None
    if opts.resume is not None:
        c.resume_pkl, resume_data = resolve_resume(opts.resume, opts.outdir)
    if resume_data is not None:
        transfer = resume_data.get('resume_state') is None
    if opts.resume == 'auto' and resume_data is not None:
        c.run_dir = os.path.dirname(c.resume_pkl) # a restart continues in its run's directory

    # Preset: every network, optimizer and loss of the family, as data.
    if opts.gpus < 1:
        raise dnnlib.UserError(f'--gpus={opts.gpus}: expected at least 1')
    cfg = opts.cfg or ('demo' if builtin else 'auto')
    overlays = tuple(name for name in OVERLAY_OPTIONS if opts[name])
    if len(overlays) > 1:
        raise dnnlib.UserError(f'{" and ".join(OVERLAY_OPTIONS[name] for name in overlays)}: choose one family')
    if opts.t_max_c is not None and not opts.dudgan:
        raise dnnlib.UserError('--t_max_c is an option of DuDGAN: add --dudgan')
    if not opts.insgen and (opts.rqs, opts.fqs, opts.no_cl_on_g) != (None, None, False):
        raise dnnlib.UserError('--rqs, --fqs and --no_cl_on_g are options of InsGen: add --insgen')
    preset, batch_gpu = resolve_preset(cfg, res=c.training_set_kwargs.resolution, gpus=opts.gpus, batch_gpu=opts.batch_gpu,
        overrides=dict(batch=opts.batch, gamma=opts.gamma, kimg=opts.kimg, d_pos=opts.d_pos, freezed=opts.freezed, rqs=opts.rqs, fqs=opts.fqs,
                       cl_on_g=False if opts.no_cl_on_g else None, t_max_c=opts.t_max_c, steps=opts.steps, eta=opts.eta, t_embed=opts.t_embed),
        fp32=opts.fp32, nhwc=opts.nhwc, bf16=opts.bf16, transfer=transfer, overlays=overlays, num_images=num_images, mirror=opts.mirror, diffusion=opts.diffusion)
    presets.check_classes(preset, cfg, common_kwargs=dict(c_dim=training_set.label_dim, img_resolution=training_set.resolution, img_channels=training_set.num_channels))
    c.family = preset.family
    c.network_kwargs = preset.networks
    c.opt_kwargs = preset.optimizers
    c.reg_intervals = preset.reg_intervals
    c.step_with = preset.step_with
    c.momentum_copies = preset.momentum_copies
    c.loss_kwargs = preset.loss
    c.data_loader_kwargs = dnnlib.EasyDict(pin_memory=torch.cuda.is_available(), num_workers=0 if builtin else opts.workers)
    if c.data_loader_kwargs.num_workers > 0:
        c.data_loader_kwargs.prefetch_factor = 2

    # Diffusion: preset defaults, then the command line.
    c.diffusion_kwargs = None
    aug = opts.aug or preset.diffusion.get('aug', 'no')
    diffusion = dnnlib.EasyDict(preset.diffusion)
    use_diffusion = preset.use_diffusion
    for key in ['target', 'ada_kimg', 'ada_maxp', 'noise_sd', 'ts_dist', 't_min', 't_max', 'beta_schedule']:
        if opts[key] is not None:
            diffusion[key] = opts[key]
    diffusion.aug = aug
    diffusion.seed = opts.seed
    # Further diffusions of the family (DuDGAN's diffusion_C): the same options with the preset's overrides, the
    # noise scaled by noise_sd_scale, and their own pool generators.
    c.companion_diffusions = dnnlib.EasyDict()
    for index, (name, overrides) in enumerate(preset.companion_diffusions.items()):
        companion = dnnlib.EasyDict(diffusion, **{key: value for key, value in overrides.items() if key != 'noise_sd_scale'})
        companion.noise_sd = diffusion.get('noise_sd', 0.05) * overrides.get('noise_sd_scale', 1)
        companion.seed = opts.seed + 1 + index
        c.companion_diffusions[name] = companion
    for kwargs in [diffusion, *c.companion_diffusions.values()]:
        if not 1 <= kwargs.get('t_min', 10) <= kwargs.get('t_max', 1000):
            raise dnnlib.UserError(f'--t_min and --t_max: expected 1 <= t_min <= t_max, got {kwargs.get("t_min", 10)} and {kwargs.get("t_max", 1000)}')
    if use_diffusion:
        c.diffusion_kwargs = diffusion
    elif aug != 'no':
        # The baselines: ADA (p adapting as in StyleGAN2-ADA, over its 500 kimg unless --ada_kimg) or DiffAugment,
        # and no diffusion: D sees t = 0 for every image.
        c.diffusion_kwargs = dnnlib.EasyDict(aug=aug, diffuse=False, target=opts.target or preset.diffusion.get('target', 0.6),
                                             ada_kimg=opts.ada_kimg or ADA_KIMG, ada_maxp=diffusion.get('ada_maxp'), seed=opts.seed)
    if c.diffusion_kwargs is not None and not 0 < c.diffusion_kwargs.get('target', 0.6) < 1:
        raise dnnlib.UserError(f'--target={c.diffusion_kwargs.target}: expected a value in (0, 1)')

    # Schedule and bookkeeping.
    c.num_gpus = opts.gpus
    c.batch_size = preset.batch
    c.batch_gpu = batch_gpu
    c.ema_kimg = preset.ema
    c.ema_rampup = preset.ramp
    c.total_kimg = preset.kimg
    c.kimg_per_tick = opts.tick
    c.image_snapshot_ticks = c.network_snapshot_ticks = opts.snap
    c.metrics = metric_main.parse_metric_list(opts.metrics if opts.metrics is not None else ','.join(preset.metrics))
    c.random_seed = opts.seed
    c.cudnn_benchmark = True
    if resume_data is not None:
        snapshot.check_resume(resume_data, c.resume_pkl, training_set, c.total_kimg)
        if transfer:
            c.ema_rampup = None # the ramp-up only makes sense from scratch

    desc = f'{dataset_name}-{cfg}' + ''.join(f'-{name}' for name in overlays) + f'-gpus{c.num_gpus}-batch{c.batch_size}' + (f'-gamma{preset.gamma:g}' if 'gamma' in preset else '')
    desc += '-diffusion' if use_diffusion else '-nodiffusion'
    if aug != 'no':
        desc += f'-{aug}'
    if opts.subset is not None:
        desc += f'-subset{opts.subset}'
    if preset.get('freezed', 0) > 0:
        desc += f'-freezed{preset.freezed}'
    if opts.cond:
        desc += '-cond'
    return c, desc

#----------------------------------------------------------------------------

def find_latest_snapshot(outdir: str, option: str = 'latest') -> Tuple[Optional[str], Optional[dict]]:
    """The newest snapshot under outdir/NNNNN-*/ (highest run number, then highest kimg) that loads and holds a
    resume state; broken ones (truncated, corrupt, foreign) are skipped with a warning. Returns (path, data); when
    there is none, UserError for --resume=latest and (None, None) for --resume=auto."""
    candidates = []
    if os.path.isdir(outdir):
        for run in os.listdir(outdir):
            run_match = re.match(r'^(\d+)-', run)
            run_dir = os.path.join(outdir, run)
            if run_match is None or not os.path.isdir(run_dir):
                continue
            for fname in os.listdir(run_dir):
                snap_match = re.fullmatch(r'network-snapshot-(\d+)\.pkl', fname)
                if snap_match is not None:
                    candidates.append((int(run_match.group(1)), int(snap_match.group(1)), os.path.join(run_dir, fname)))
    for _run, _kimg, path in sorted(candidates, reverse=True):
        try:
            data = legacy.open_network(path)
        except dnnlib.UserError as err:
            print(f'Warning: --resume={option}: skipping {err}', file=sys.stderr)
            continue
        if data.get('resume_state') is None:
            print(f'Warning: --resume={option}: skipping {path}: it holds no resume state', file=sys.stderr)
            continue
        return path, data
    if option == 'auto':
        return None, None
    raise dnnlib.UserError(f'--resume=latest: no valid snapshot under --outdir={outdir}')

def resolve_resume(resume: str, outdir: str) -> Tuple[Optional[str], Optional[dict]]:
    """--resume=auto, latest, a path or a URL -> (pickle path or URL, its loaded contents); (None, None) for auto
    when --outdir holds no valid snapshot (a fresh start)."""
    if resume in ['auto', 'latest']:
        return find_latest_snapshot(outdir, option=resume)
    if not dnnlib.util.is_url(resume) and not os.path.exists(resume):
        keyword = re.match(r'(auto|latest)\W', resume)
        if keyword is not None:
            raise dnnlib.UserError(f'--resume={resume}: {keyword.group(1)} takes no path (it searches --outdir); give {keyword.group(1)} or a path, not both')
        raise dnnlib.UserError(f'--resume={resume}: no such file')
    try:
        return resume, legacy.open_network(resume)
    except dnnlib.UserError as err:
        raise dnnlib.UserError(f'--resume: {err}') from err

#----------------------------------------------------------------------------

def positive(ctx, param, value):
    """click callback: reject zero and negative values with the option's name."""
    if value is not None and value <= 0:
        raise click.BadParameter(f'{value} must be positive')
    return value

def parse_eta(ctx, param, value):
    """click callback: a schedule name, or comma-separated numbers as a list (their count and signs are checked
    against the preset, by DifGANLoss)."""
    if value is None or re.fullmatch(r'[a-z]+', value):
        return value
    try:
        return [float(item) for item in value.split(',')]
    except ValueError:
        raise click.BadParameter(f'"{value}": expected a schedule name or comma-separated numbers') from None

def non_negative(ctx, param, value):
    """click callback: reject negative values with the option's name."""
    if value is not None and value < 0:
        raise click.BadParameter(f'{value} must not be negative')
    return value

@click.command(context_settings=dict(max_content_width=120))
# Required.
@click.option('--outdir',        help='Where to save the results', metavar='DIR', required=True)
@click.option('--data',          help='Training data: zip or folder of images, or builtin:digits, builtin:digits-train [default: builtin:digits, the demo]', metavar='[ZIP|DIR|NAME]')
@click.option('--gpus',          help='Number of GPUs (processes) to use', metavar='INT', type=click.IntRange(min=1), default=1, show_default=True)
@click.option('--cfg',           help='Preset from configs/ [default: demo without --data, else auto]', type=click.Choice(presets.preset_names()))
# Dataset.
@click.option('--cond',          help='Train conditional model on dataset labels', metavar='BOOL', type=bool, default=False, show_default=True)
@click.option('--mirror',        help='Enable dataset x-flips', metavar='BOOL', type=bool, default=False, show_default=True)
@click.option('--subset',        help='Train on a fixed random subset of N images (seeded, as in StyleGAN2-ADA) [default: all]', metavar='INT', type=click.IntRange(min=1))
# Hyper-parameters.
@click.option('--batch',         help='Total batch size [default: preset]', metavar='INT', type=int, callback=positive)
@click.option('--batch-gpu',     help='Limit batch size per GPU (gradient accumulation)', metavar='INT', type=int, callback=positive)
@click.option('--gamma',         help='R1 regularization weight [default: preset]', metavar='FLOAT', type=float, callback=non_negative)
@click.option('--kimg',          help='Training duration [default: preset]', metavar='KIMG', type=float, callback=positive)
# Diffusion.
@click.option('--diffusion/--no-diffusion', help='Adaptive diffusion before D (--no-diffusion: the plain GAN, with --aug its ADA/DiffAugment baseline) [default: preset, on; difgan: off]', default=None)
@click.option('--aug',           help='Augmentation in front of the diffusion [default: preset, no; --insgen: ada]', type=click.Choice(['no', 'ada', 'diff']))
@click.option('--d_pos',         help='ProjectedGAN: diffusion on the pretrained features (first) or after cross-scale mixing (last) [default: preset, first]', type=click.Choice(['first', 'last']))
@click.option('--target',        help='Target E[sign(D(x_t real))] for adapting T [default: preset, 0.6]', metavar='FLOAT', type=float)
@click.option('--ada_kimg',      help='kimg for p to move from 0 to 1 [default: preset, 100]', metavar='KIMG', type=float, callback=positive)
@click.option('--noise_sd',      help='Diffusion noise sigma [default: 0.05]', metavar='FLOAT', type=float, callback=positive)
@click.option('--ts_dist',       help='Timestep distribution [default: priority]', type=click.Choice(['priority', 'uniform']))
@click.option('--t_min',         help='Minimum T [default: 10]', metavar='INT', type=int)
@click.option('--t_max',         help='Maximum T [default: 1000]', metavar='INT', type=int)
@click.option('--beta_schedule', help='Beta schedule [default: linear]', type=click.Choice(['linear', 'cosine', 'quad', 'sigmoid', 'const', 'jsd']))
@click.option('--ada_maxp',      help='Cap on the ADA probability of --aug=ada (which otherwise follows p) [default: preset, none; --dudgan: 0.25]', metavar='FLOAT', type=click.FloatRange(min=0, max=1))
@click.option('--freezed',       help='Freeze-D: keep the first N layers of D fixed (StyleGAN2-family presets) [default: 0]', metavar='INT', type=click.IntRange(min=0))
# InsGen.
@click.option('--insgen',        help='InsGen: contrastive instance discrimination in D (StyleGAN2 presets; configs/overlays/insgen.yaml)', is_flag=True)
@click.option('--rqs',           help='InsGen: real-instance queue size [default: 5% of the images, x-flips counted]', metavar='INT', type=click.IntRange(min=1))
@click.option('--fqs',           help='InsGen: fake-instance queue size [default: 5% of the images, x-flips counted]', metavar='INT', type=click.IntRange(min=1))
@click.option('--no_cl_on_g',    help='InsGen: no fake-instance discrimination in G\'s loss', is_flag=True)
# DuDGAN.
@click.option('--dudgan',        help='DuDGAN: a classifier C on its own diffusion, its contrastive loss in G\'s (StyleGAN2 presets, --cond=1; configs/overlays/dudgan.yaml)', is_flag=True)
@click.option('--t_max_c',       help='DuDGAN: largest T of C\'s diffusion [default: 300]', metavar='INT', type=click.IntRange(min=1))
# Misc.
@click.option('--steps',         help='DifGAN: generator steps T (1: the high-dimensional GAN) [default: preset, 4]', metavar='INT', type=click.IntRange(min=1))
@click.option('--eta',           help='DifGAN: weights of the outputs z_(T-1)..z_0 in the losses: uniform, final, linear or T comma-separated numbers [default: preset, uniform]', metavar='NAME|LIST', callback=parse_eta)
@click.option('--t_embed',       help='DifGAN: timestep embedding of the generator steps [default: preset, sinusoidal]', type=click.Choice(['sinusoidal', 'scalar', 'none']))

@click.option('--resume',        help='Resume: latest (newest snapshot under --outdir), auto (the same, in its run directory; a fresh start when there is none) or a snapshot of ours continues exactly; other pickles give their weights only', metavar='[auto|latest|PATH|URL]')
@click.option('--ddp-timeout',   help='Minutes a rank waits for the others before the job stops (a rank lost)', metavar='MIN', type=float, callback=positive, default=DEFAULT_DDP_TIMEOUT, show_default=True)
@click.option('--snap',          help='Snapshot interval in ticks', metavar='TICKS', type=click.IntRange(min=1), default=50, show_default=True)
@click.option('--tick',          help='Progress print interval', metavar='KIMG', type=float, callback=positive, default=4, show_default=True)
@click.option('--seed',          help='Random seed', metavar='INT', type=click.IntRange(min=0), default=0, show_default=True)
@click.option('--fp32',          help='Disable mixed precision', metavar='BOOL', type=bool, default=False, show_default=True)
@click.option('--bf16',          help='CPU: run the mixed-precision layers (the preset\'s num_fp16_res, float16 on CUDA) in bfloat16', metavar='BOOL', type=bool, default=False, show_default=True)
@click.option('--nhwc',          help='Channels-last layout for FP16 layers', metavar='BOOL', type=bool, default=False, show_default=True)
@click.option('--workers',       help='DataLoader worker processes', metavar='INT', type=click.IntRange(min=0), default=3, show_default=True)
@click.option('--metrics',       help='Quality metrics at each snapshot, comma-separated or none [default: preset, fid50k_full; demo: none]', metavar='[NAME|A,B,C|none]')
@click.option('-n', '--dry-run', help='Print training options and exit', is_flag=True)
def main(**kwargs):
    """Train a GAN (StyleGAN2, StyleGAN3, ProjectedGAN, DCGAN, DifGAN: see --cfg; InsGen: --insgen; DuDGAN: --dudgan) with the adaptive diffusion of Diffusion-GAN.

    \b
    # Built-in demo: digits at 32x32 on the CPU.
    python train.py --outdir=training-runs
    \b
    # CIFAR-10 (dataset_tool.py output), 4 GPUs, official Diffusion-StyleGAN2 settings.
    python train.py --outdir=training-runs --data=cifar10.zip --gpus=4 --cfg=cifar --kimg=50000 --target=0.6 --noise_sd=0.05
    \b
    # Diffusion-StyleGAN3-T (--gamma is required, as in StyleGAN3), ADA in front of the diffusion.
    python train.py --outdir=training-runs --data=cifar10.zip --cfg=stylegan3-t --batch=32 --gamma=8.2 --mirror=1 --aug=ada
    \b
    # Diffusion-ProjectedGAN (FastGAN G, projected D on EfficientNet-Lite0 features), as the official release runs it.
    python train.py --outdir=training-runs --data=cifar10.zip --gpus=4 --batch=64 --batch-gpu=16 --cfg=fastgan --target=0.45 --d_pos=first --noise_sd=0.5
    \b
    # DuDGAN on class-conditional CIFAR-10 (its public code's command, with --dudgan).
    python train.py --outdir=training-runs --data=cifar10.zip --gpus=1 --cfg=cifar --kimg=10000 --aug=no --target=0.6 --noise_sd=0.05 --ts_dist=priority --cond=true --dudgan
    \b
    # Diffusion-InsGen (contrastive heads on D, the fork's defaults: ADA in front, uniform t up to 500).
    python train.py --outdir=training-runs --data=afhq-wild.zip --gpus=8 --cfg=paper512 --kimg=25000 --mirror=1 --insgen
    \b
    # The small comparison models on the digits: plain DCGAN (without --no-diffusion: Diffusion-DCGAN), DifGAN with 4 steps.
    python train.py --outdir=training-runs --cfg=dcgan_demo --no-diffusion
    python train.py --outdir=training-runs --cfg=difgan --steps=4 --eta=uniform
    \b
    # After a crash: the same command, continuing the newest snapshot exactly.
    python train.py --outdir=training-runs --data=cifar10.zip --gpus=4 --cfg=cifar --kimg=50000 --resume=latest
    \b
    # On a cluster: one command for the first start, elastic restarts and requeues (see README, Clusters).
    torchrun --standalone --nproc-per-node=4 --max-restarts=3 train.py --outdir=training-runs --data=cifar10.zip --cfg=cifar --kimg=50000 --resume=auto
    """
    opts = dnnlib.EasyDict(kwargs)
    check_output_path(opts.outdir, '--outdir')
    c, desc = build_config(opts)
    launch_training(c=c, desc=desc, outdir=opts.outdir, dry_run=opts.dry_run, ddp_timeout=opts.ddp_timeout)

#----------------------------------------------------------------------------

if __name__ == '__main__':
    run_cli(main)

#----------------------------------------------------------------------------

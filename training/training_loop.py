"""The training loop shared by every GAN family: data, phases with lazy regularization, gradient
reduction across ranks, G_ema, adaptation of the diffusion (p and T), image grids, snapshots and statistics.

Snapshots are taken at tick boundaries and carry everything the loop's future depends on ('resume_state':
optimizer states, counters, RNG states of every rank, the diffusion's state and pool generator, ...), so that a
run resumed from one continues with the same numbers as the run that was never stopped. A stop signal
(training/preemption.py) takes a snapshot inside a tick, after the minibatch every rank has finished."""

import copy
import json
import os
import pickle
import random
import re
import resource
import sys
import time
from typing import Tuple

import numpy as np
import PIL.Image
import torch
import tqdm

import dnnlib
import legacy
from metrics import metric_main
from torch_utils import misc
from torch_utils import training_stats
from torch_utils.ops import conv2d_gradfix
from torch_utils.ops import grid_sample_gradfix
from training import preemption
from training import snapshot
from training.diffusion import adaptive_p_of

# Buffers that are running statistics of each rank's own minibatches, so they may differ between ranks (the
# snapshot keeps rank 0's): w_avg and StyleGAN3's magnitude_ema, batch-norm statistics (FastGAN, the projected D's
# per-scale discriminators) and FastGAN's conditional batch norm. Training-mode forward passes do not read them.
RANK_LOCAL_BUFFERS = r'.*\.([^.]+_(avg|ema)|running_mean|running_var|num_batches_tracked|stored_mean|stored_var)'

#----------------------------------------------------------------------------

def setup_snapshot_image_grid(training_set, random_seed: int = 0):
    """Pick reals for the snapshot grid: random images, or rows of one class each when labelled."""
    rnd = np.random.RandomState(random_seed)
    gw = int(np.clip(7680 // training_set.image_shape[2], 7, 32))
    gh = int(np.clip(4320 // training_set.image_shape[1], 4, 32))

    if not training_set.has_labels:
        all_indices = list(range(len(training_set)))
        rnd.shuffle(all_indices)
        grid_indices = [all_indices[i % len(all_indices)] for i in range(gw * gh)]
    else:
        # One row per label (cycling through the classes), images of that class along the row.
        label_groups = dict()
        for idx in range(len(training_set)):
            label = tuple(training_set.get_details(idx).raw_label.flat[::-1])
            label_groups.setdefault(label, []).append(idx)
        label_order = sorted(label_groups.keys())
        for label in label_order:
            rnd.shuffle(label_groups[label])
        grid_indices = []
        for y in range(gh):
            group = label_groups[label_order[y % len(label_order)]]
            grid_indices += [group[x % len(group)] for x in range(gw)]

    images, labels = zip(*[training_set[i] for i in grid_indices])
    return (gw, gh), np.stack(images), np.stack(labels)

#----------------------------------------------------------------------------

def save_image_grid(img: np.ndarray, fname: str, drange, grid_size) -> None:
    """Tile a [N, C, H, W] batch into one PNG (C = 1 grayscale, C = 3 RGB), mapping drange to [0, 255]."""
    lo, hi = drange
    img = np.asarray(img, dtype=np.float32)
    img = np.rint((img - lo) * (255 / (hi - lo))).clip(0, 255).astype(np.uint8)
    gw, gh = grid_size
    _N, C, H, W = img.shape
    img = img.reshape(gh, gw, C, H, W).transpose(0, 3, 1, 4, 2).reshape(gh * H, gw * W, C)
    assert C in [1, 3]
    PIL.Image.fromarray(img[:, :, 0] if C == 1 else img, 'L' if C == 1 else 'RGB').save(fname)

#----------------------------------------------------------------------------

def make_phases(modules: dict, opt_kwargs: dict, reg_intervals: dict, step_with: dict = {}) -> list:
    """Training phases of every trained network (modules: name -> module, in the order they train; opt_kwargs and
    reg_intervals: name -> optimizer kwargs, lazy regularization interval or None): NAMEmain every minibatch and
    NAMEreg every reg_interval minibatches, or NAMEboth every minibatch when reg_interval is None. Lazy
    regularization runs the regularizer only every reg_interval minibatches (with its gain scaled up), and the
    optimizer's lr and betas are adjusted so the effective step matches the non-lazy schedule.
    step_with: name -> host network, for networks trained by the host's main loss (InsGen's heads by D's): they
    have no phases of their own, and take their step (optimizer as given, no lazy adjustment) in the host's
    main/both phases. Each phase's members: [(name, module, optimizer)], its own network first."""
    phases = []
    guests = {name: dnnlib.util.construct_class_by_name(params=modules[name].parameters(), **opt_kwargs[name]) for name in step_with}
    for name, module in modules.items():
        if name in step_with:
            continue
        reg_interval = reg_intervals.get(name)
        lazy_kwargs = dnnlib.EasyDict(opt_kwargs[name])
        if reg_interval is not None:
            mb_ratio = reg_interval / (reg_interval + 1)
            lazy_kwargs.lr = lazy_kwargs.lr * mb_ratio
            lazy_kwargs.betas = [beta ** mb_ratio for beta in lazy_kwargs.betas]
        opt = dnnlib.util.construct_class_by_name(params=module.parameters(), **lazy_kwargs)
        main_members = [(name, module, opt)] + [(guest, modules[guest], guest_opt) for guest, guest_opt in guests.items() if step_with[guest] == name]
        if reg_interval is None:
            phases += [dnnlib.EasyDict(name=name + 'both', network=name, module=module, opt=opt, interval=1, members=main_members)]
        else:
            phases += [dnnlib.EasyDict(name=name + 'main', network=name, module=module, opt=opt, interval=1, members=main_members)]
            phases += [dnnlib.EasyDict(name=name + 'reg', network=name, module=module, opt=opt, interval=reg_interval, members=[(name, module, opt)])]
    return phases

#----------------------------------------------------------------------------

def run_phase(phase: dnnlib.EasyDict, loss, rounds, cur_nimg: int, num_gpus: int = 1) -> None:
    """One optimizer step of a phase: accumulate gradients over the rounds (real_img, real_c, gen_z, gen_c),
    average them over rounds and ranks, zero out non-finite entries (counted in the stats, and the step flagged
    in Progress/nonfinite_steps), step every member network."""
    for _name, module, opt in phase.members:
        opt.zero_grad(set_to_none=True)
        module.requires_grad_(True)
    # A network's parameters that stay fixed in training (a momentum copy inside it) take no step.
    members = [(module, opt, [param for param in module.parameters() if param.requires_grad]) for _name, module, opt in phase.members]
    num_rounds = 0
    for real_img, real_c, gen_z, gen_c in rounds:
        loss.accumulate_gradients(phase=phase.name, real_img=real_img, real_c=real_c, gen_z=gen_z, gen_c=gen_c, gain=phase.interval, cur_nimg=cur_nimg)
        num_rounds += 1
    for module, _opt, _params in members:
        module.requires_grad_(False)

    with torch.autograd.profiler.record_function(phase.name + '_opt'):
        # A regularizer alone does not reach every parameter (R1 not D's output bias, path length not G's toRGB
        # biases). Those take a step with a zero gradient all the same, as in the official loop (its `x * 0 +`
        # terms in the loss): Adam's step count and second moments then advance alike for every parameter.
        # A network that the phase did not reach at all (path length with pl_weight 0) steps nothing, as there.
        members = [(opt, params if any(param.grad is not None for param in params) else []) for _module, opt, params in members]
        params = [param for _opt, member_params in members for param in member_params]
        for param in params:
            if param.grad is None:
                param.grad = torch.zeros_like(param)
        if len(params) > 0:
            flat = torch.cat([param.grad.flatten() for param in params])
            if num_gpus > 1:
                torch.distributed.all_reduce(flat)
            flat /= num_gpus * num_rounds
            nonfinite = (~torch.isfinite(flat)).sum()
            training_stats.report('Progress/nonfinite_grads', nonfinite)
            training_stats.report('Progress/nonfinite_steps', nonfinite > 0)
            torch.nan_to_num(flat, nan=0, posinf=1e5, neginf=-1e5, out=flat)
            for param, grad in zip(params, flat.split([param.numel() for param in params])):
                param.grad = grad.reshape(param.shape)
        for opt, member_params in members:
            if len(member_params) > 0:
                opt.step()

#----------------------------------------------------------------------------

def update_ema(G_ema, G, batch_size: int, ema_kimg: float, ema_rampup, cur_nimg: int) -> None:
    """G_ema <- exponential moving average of G with a half-life of ema_kimg (capped at cur_nimg * ema_rampup)."""
    with torch.autograd.profiler.record_function('Gema'):
        ema_nimg = ema_kimg * 1000
        if ema_rampup is not None:
            ema_nimg = min(ema_nimg, cur_nimg * ema_rampup)
        ema_beta = 0.5 ** (batch_size / max(ema_nimg, 1e-8))
        for p_ema, p in zip(G_ema.parameters(), G.parameters()):
            p_ema.copy_(p.lerp(p_ema, ema_beta))
        for b_ema, b in zip(G_ema.buffers(), G.buffers()):
            b_ema.copy_(b)

#----------------------------------------------------------------------------

def take_moments(collector: training_stats.Collector, name: str) -> Tuple[int, float]:
    """(count, sum) of the values reported under name since the collector's previous update (which this is)."""
    collector.update()
    num = collector.num(name)
    return num, (collector.mean(name) * num if num > 0 else 0.0)

def is_better(metric: str, value: float, best: float) -> bool:
    """Whether a metric result improves on the best so far: lower FID/KID/PPL and class-histogram KL, higher
    precision/recall/IS mean and mode coverage (classes, confidence, a conditional G's accuracy); other results are not ranked."""
    if metric.startswith(('fid', 'kid', 'ppl')) or metric.endswith('_kl'):
        return value < best
    if metric.endswith(('_precision', '_recall', '_mean', '_classes', '_confidence', '_cond_accuracy')):
        return value > best
    return False

def trim_logs(run_dir: str, next_tick: int) -> None:
    """A run continuing in its own directory: drop what the previous process logged after the snapshot it resumes
    from (ticks from next_tick on, and a line cut short by a kill) from run_dir/stats.jsonl and the tick lines of
    run_dir/log.txt, so that each tick is logged once."""
    def is_later(fname: str, line: str) -> bool:
        if not line.endswith('\n'):
            return True
        if fname == 'stats.jsonl':
            return json.loads(line)['Progress/tick']['mean'] >= next_tick
        match = re.match(r'tick (\d+) ', line)
        return match is not None and int(match.group(1)) >= next_tick
    for fname in ['stats.jsonl', 'log.txt']:
        path = os.path.join(run_dir, fname)
        if os.path.isfile(path):
            with open(path, 'rt') as f:
                lines = f.readlines()
            kept = [line for line in lines if not is_later(fname, line)]
            if len(kept) < len(lines):
                with open(path, 'wt') as f:
                    f.writelines(kept)

#----------------------------------------------------------------------------

def training_loop(
    run_dir                 = '.',      # output directory
    training_set_kwargs     = {},       # dataset (class_name + kwargs)
    data_loader_kwargs      = {},       # torch.utils.data.DataLoader options
    family                  = None,     # GAN family of the preset (recorded in snapshots)
    network_kwargs          = {},       # trained networks: name -> class_name + kwargs; must include 'G' (G_ema follows it)
    opt_kwargs              = {},       # name -> optimizer class_name + kwargs, for every network in network_kwargs
    reg_intervals           = {},       # name -> lazy regularization every N minibatches, None = fused with the main loss
    step_with               = {},       # name -> host network whose main phases step it (InsGen's heads: D)
    momentum_copies         = {},       # name -> dict(network, momentum): a copy following that network (InsGen's D_ema)
    diffusion_kwargs        = None,     # training.diffusion.Diffusion kwargs, None = no diffusion (plain GAN baseline)
    companion_diffusions    = {},       # name -> Diffusion kwargs of a further diffusion given to the loss (DuDGAN's diffusion_C), stepped with the main one
    loss_kwargs             = {},       # loss (class_name + kwargs)
    random_seed             = 0,        # global seed
    num_gpus                = 1,        # number of processes taking part
    rank                    = 0,        # rank of this process in [0, num_gpus)
    batch_size              = 4,        # total minibatch over all processes
    batch_gpu               = 4,        # minibatch per process and step (gradient accumulation when smaller)
    ema_kimg                = 10,       # G_ema half-life, thousands of images
    ema_rampup              = 0.05,     # G_ema ramp-up: half-life capped at cur_nimg * ema_rampup; None = off
    ada_interval            = 4,        # adapt the diffusion p every N minibatches
    total_kimg              = 25000,    # training length, thousands of real images
    kimg_per_tick           = 4,        # progress report interval
    image_snapshot_ticks    = 50,       # fakes grid every N ticks, None = never
    network_snapshot_ticks  = 50,       # network pickle every N ticks, None = never
    metrics                 = [],       # metric names (metrics/metric_main.py) computed at every network snapshot
    resume_pkl              = None,     # our snapshot (exact resume) or any network pickle (transfer of G, D, G_ema)
    cudnn_benchmark         = True,     # torch.backends.cudnn.benchmark
    allow_tf32              = False,    # TF32 matmuls and convolutions on Ampere+
    progress_bar            = None,     # tqdm bar on the terminal; None = when stderr is a terminal
) -> bool:
    """Train; returns True when the run is complete, False when a stop signal ended it (training/preemption.py)."""
    start_time = time.time()
    device = torch.device('cuda', torch.cuda.current_device()) if torch.cuda.is_available() else torch.device('cpu')
    random.seed(random_seed * num_gpus + rank)
    np.random.seed(random_seed * num_gpus + rank)
    torch.manual_seed(random_seed * num_gpus + rank)
    torch.backends.cudnn.benchmark = cudnn_benchmark
    torch.backends.cuda.matmul.allow_tf32 = allow_tf32
    torch.backends.cudnn.allow_tf32 = allow_tf32
    conv2d_gradfix.enabled = True           # R1 and path length need double backward through convolutions
    grid_sample_gradfix.enabled = True

    # Resume: an exact continuation from a snapshot of ours (it has a 'resume_state'), else networks only.
    # Without a resume state, the diffusion's p is taken over from a snapshot that has a diffusion (ours keep it
    # as 'augment_pipe', the official Diffusion-GAN loop as 'diffusion'; legacy.py converts theirs to ours).
    resume_data = None
    resume_state = None
    resume_p = None
    if resume_pkl is not None:
        if rank == 0:
            print(f'Resuming from "{resume_pkl}"')
            resume_data = legacy.open_network(resume_pkl)
            resume_state = resume_data.get('resume_state')
            resume_p = next((p for p in map(adaptive_p_of, [resume_data.get('diffusion'), resume_data['augment_pipe']]) if p is not None), None)
        if num_gpus > 1:
            shared = [resume_state, resume_p]
            torch.distributed.broadcast_object_list(shared, src=0)
            resume_state, resume_p = shared

    # Data; a resumed run's sampler continues the stream where the snapshot left it.
    if rank == 0:
        print('Loading training set...')
    training_set = dnnlib.util.construct_class_by_name(**training_set_kwargs)
    if resume_data is not None:
        snapshot.check_resume(resume_data, resume_pkl, training_set, total_kimg)
    start_idx = resume_state['batch_idx'] * batch_size if resume_state is not None else 0
    sampler = misc.InfiniteSampler(dataset=training_set, rank=rank, num_replicas=num_gpus, seed=random_seed, start_idx=start_idx)
    training_set_iterator = iter(torch.utils.data.DataLoader(dataset=training_set, sampler=sampler, batch_size=batch_size // num_gpus, **data_loader_kwargs))
    if rank == 0:
        print(f'Num images: {len(training_set)}, image shape: {training_set.image_shape}, label shape: {training_set.label_shape}')

    # Networks.
    common_kwargs = dict(c_dim=training_set.label_dim, img_resolution=training_set.resolution, img_channels=training_set.num_channels)
    modules = {name: dnnlib.util.construct_class_by_name(**kwargs, **common_kwargs).train().requires_grad_(False).to(device)
               for name, kwargs in network_kwargs.items()}
    G = modules['G']
    G_ema = copy.deepcopy(G).eval()
    copies = {name: copy.deepcopy(modules[spec['network']]).eval() for name, spec in momentum_copies.items()}
    networks = dict(modules, G_ema=G_ema, **copies)   # everything a snapshot holds
    source_network = dict({name: spec['network'] for name, spec in momentum_copies.items()}, G_ema='G')
    diffusion = None
    if diffusion_kwargs is not None:
        diffusion = dnnlib.util.construct_class_by_name(class_name='training.diffusion.Diffusion', **diffusion_kwargs).train().requires_grad_(False).to(device)
    companions = {name: dnnlib.util.construct_class_by_name(class_name='training.diffusion.Diffusion', **kwargs).train().requires_grad_(False).to(device)
                  for name, kwargs in companion_diffusions.items()}
    for name, companion in companions.items():
        if companion.p_step is None:
            raise dnnlib.UserError(f'companion diffusion {name}: needs p_step (it steps by a fixed amount; only the main diffusion adapts to D)')

    if resume_data is not None:
        for name, module in networks.items():
            if resume_data.get(name) is not None:
                try:
                    misc.copy_params_and_buffers(resume_data[name], module, require_all=resume_state is not None)
                except (KeyError, ValueError) as err:
                    raise dnnlib.UserError(f'--resume={resume_pkl}: its {name} does not match the network options of this run ({err})') from err
    if resume_state is not None and diffusion is not None and resume_state['diffusion'] is not None:
        diffusion.set_state(resume_state['diffusion']['state'])
        diffusion._rng.bit_generator.state = resume_state['diffusion']['rng']
    elif resume_p is not None and diffusion is not None:
        diffusion.p = resume_p
        diffusion.update_T()
        if rank == 0:
            print(f'Diffusion from the resumed snapshot: p {diffusion.p:.4f}, T {diffusion.T}')
    for name, companion in companions.items():
        if resume_state is not None and name in resume_state.get('companions', {}):
            companion.set_state(resume_state['companions'][name]['state'])
            companion._rng.bit_generator.state = resume_state['companions'][name]['rng']

    if rank == 0:
        z = torch.zeros([batch_gpu, G.z_dim], device=device)
        c = torch.zeros([batch_gpu, G.c_dim], device=device)
        t = torch.zeros([batch_gpu, 1], dtype=torch.int64, device=device)
        # On copies: a forward pass in training mode updates batch-norm statistics and spectral-norm vectors
        # (FastGAN, the projected D), which would make the run depend on this summary.
        # An iterative sampler (DDPM, DDGAN) is summarized on one step of its network: G.summary_call(z, c) gives
        # (module, inputs), since the summary keeps every call's outputs.
        module, inputs = G.summary_call(z, c) if hasattr(G, 'summary_call') else (G, [z, c])
        img = misc.print_module_summary(misc.deepcopy_module(module), inputs)
        if 'D' in modules:
            misc.print_module_summary(misc.deepcopy_module(modules['D']), [img, c, t])

    # Every rank starts from rank 0's weights.
    if num_gpus > 1:
        for module in networks.values():
            for param in misc.params_and_buffers(module):
                torch.distributed.broadcast(param, src=0)

    loss = dnnlib.util.construct_class_by_name(device=device, diffusion=diffusion, **companions, **modules, **copies, **loss_kwargs)
    phases = make_phases(modules=modules, opt_kwargs=opt_kwargs, reg_intervals=reg_intervals, step_with=step_with)
    optimizers = {name: opt for phase in phases for name, _module, opt in phase.members} # one per network; its lazy phases share it
    options = dict(batch_size=batch_size, batch_gpu=batch_gpu, num_gpus=num_gpus, random_seed=random_seed, kimg_per_tick=kimg_per_tick,
                   ada_interval=ada_interval, ema_kimg=ema_kimg, ema_rampup=ema_rampup, diffusion=diffusion_kwargs is not None,
                   **{f'{name}_reg_interval': reg_intervals.get(name) for name in modules})
    rank_state = None
    if resume_state is not None:
        for name, opt in optimizers.items():
            try:
                opt.load_state_dict(resume_state['optimizers'][name])
            except (KeyError, ValueError) as err:
                raise dnnlib.UserError(f'--resume={resume_pkl}: its {name} optimizer state does not match this run ({err})') from err
        changed = [f'{key}={resume_state["options"].get(key)}->{value}' for key, value in options.items() if resume_state['options'].get(key) != value]
        if rank == 0 and changed:
            print(f'Warning: options differ from the resumed run ({", ".join(changed)}); training continues, but not bit-exactly')
        rank_state = resume_state['ranks'][rank % len(resume_state['ranks'])]
        for name, value in rank_state['loss'].items():
            getattr(loss, name).copy_(value)

    # Snapshot grid: reals once, fakes from fixed latents at every image snapshot.
    grid_size = grid_z = grid_c = None
    if rank == 0:
        print('Exporting sample images...')
        grid_size, images, labels = setup_snapshot_image_grid(training_set=training_set, random_seed=random_seed)
        save_image_grid(images, os.path.join(run_dir, 'reals.png'), drange=[0, 255], grid_size=grid_size)
        grid_z = torch.randn([labels.shape[0], G.z_dim], device=device).split(batch_gpu)
        grid_c = torch.from_numpy(labels).to(device).split(batch_gpu)
        images = torch.cat([G_ema(z=z, c=c, noise_mode='const').cpu() for z, c in zip(grid_z, grid_c)]).numpy()
        save_image_grid(images, os.path.join(run_dir, 'fakes_init.png'), drange=[-1, 1], grid_size=grid_size)

    # Logs. Each tick logs what was measured during it (nothing carried over from earlier ticks, so that a resumed
    # run logs the same). The diffusion's r_d is averaged over each ada_interval; a tick boundary inside an interval
    # parks the signs seen so far in ada_pending (count, sum), so that a snapshot there holds them too.
    stats_collector = training_stats.Collector(regex='.*', keep_previous=False)
    ada_stats = training_stats.Collector(regex='Loss/signs/real', keep_previous=False) if diffusion is not None else None
    stats_jsonl = None
    stats_tfevents = None
    if rank == 0:
        if resume_state is not None:
            trim_logs(run_dir, next_tick=resume_state['cur_tick'] + (0 if resume_state.get('mid_tick') else 1))
        stats_jsonl = open(os.path.join(run_dir, 'stats.jsonl'), 'at' if resume_state is not None else 'wt')
        try:
            import torch.utils.tensorboard as tensorboard
            stats_tfevents = tensorboard.SummaryWriter(run_dir)
        except ImportError as err:
            print('Skipping tfevents export:', err)
    if progress_bar is None:
        progress_bar = sys.__stderr__ is not None and sys.__stderr__.isatty()
    pbar = tqdm.tqdm(total=total_kimg, unit='kimg', file=sys.__stderr__, dynamic_ncols=True, leave=False, initial=resume_state['cur_nimg'] / 1000 if resume_state is not None else 0,
                     bar_format='{l_bar}{bar}| {n:.1f}/{total_fmt} kimg [{elapsed}<{remaining}]') if rank == 0 and progress_bar else None

    cur_nimg = 0
    cur_tick = 0
    batch_idx = 0
    prev_sec = 0.0                  # training time before the resume
    ada_pending = (0, 0.0)
    stats_metrics = dict()          # latest value of each metric
    best_metrics = dict()           # metric -> dict(value, kimg, snapshot)
    last_snapshot = None
    tick_start_nimg = 0
    if resume_state is not None:
        # A preemption snapshot is taken inside a tick: the resumed run finishes that tick where it would have ended.
        cur_nimg = resume_state['cur_nimg']
        cur_tick = resume_state['cur_tick'] + (0 if resume_state.get('mid_tick') else 1)
        tick_start_nimg = resume_state['tick_start_nimg'] if resume_state.get('mid_tick') else cur_nimg
        batch_idx = resume_state['batch_idx']
        prev_sec = resume_state['total_sec']
        ada_pending = tuple(resume_state['ada_pending'])
        stats_metrics = dict(resume_state['stats_metrics'])
        best_metrics = copy.deepcopy(resume_state['best_metrics'])
        last_snapshot = resume_pkl
        snapshot.restore_rng_state(rank_state['rng'], device) # last, after everything that draws at start-up
    if rank == 0:
        print(f'Training for {total_kimg} kimg' + (f', from kimg {cur_nimg / 1000:g} (tick {cur_tick})...' if resume_state is not None else '...'))
        print()
    tick_start_time = time.time()
    maintenance_time = tick_start_time - start_time
    while True:

        # Fetch a minibatch of reals and latents, split per accumulation round.
        with torch.autograd.profiler.record_function('data_fetch'):
            phase_real_img, phase_real_c = next(training_set_iterator)
            phase_real_img = (phase_real_img.to(device).to(torch.float32) / 127.5 - 1).split(batch_gpu)
            phase_real_c = phase_real_c.to(device).split(batch_gpu)
            rank_batch = batch_size // num_gpus
            all_gen_z = torch.randn([len(phases) * rank_batch, G.z_dim], device=device)
            all_gen_z = [phase_gen_z.split(batch_gpu) for phase_gen_z in all_gen_z.split(rank_batch)]
            all_gen_c = [training_set.get_label(np.random.randint(len(training_set))) for _ in range(len(phases) * rank_batch)]
            all_gen_c = torch.from_numpy(np.stack(all_gen_c)).to(device)
            all_gen_c = [phase_gen_c.split(batch_gpu) for phase_gen_c in all_gen_c.split(rank_batch)]

        # Momentum copies follow their networks before the minibatch (InsGen's D_ema: parameters only).
        for name, spec in momentum_copies.items():
            with torch.autograd.profiler.record_function(name):
                misc.momentum_update(copies[name], modules[spec['network']], spec['momentum'])

        for phase, phase_gen_z, phase_gen_c in zip(phases, all_gen_z, all_gen_c):
            if batch_idx % phase.interval == 0:
                run_phase(phase=phase, loss=loss, rounds=zip(phase_real_img, phase_real_c, phase_gen_z, phase_gen_c), cur_nimg=cur_nimg, num_gpus=num_gpus)

        update_ema(G_ema=G_ema, G=G, batch_size=batch_size, ema_kimg=ema_kimg, ema_rampup=ema_rampup, cur_nimg=cur_nimg)

        cur_nimg += batch_size
        batch_idx += 1
        if pbar is not None:
            pbar.update(batch_size / 1000)

        # Diffusion: move p (and with it T) toward the target overfitting level r_d = E[sign(D(x_t real))].
        if diffusion is not None and batch_idx % ada_interval == 0:
            num, total = take_moments(ada_stats, 'Loss/signs/real')
            num, total = num + ada_pending[0], total + ada_pending[1]
            ada_pending = (0, 0.0)
            if num > 0 and np.isfinite(total):
                diffusion.adapt(total / num, batch_size * ada_interval)
        if batch_idx % ada_interval == 0:
            for companion in companions.values():
                companion.adapt(None, batch_size * ada_interval) # fixed steps (p_step): no r_d

        # Tick? Or a stop signal on any rank (asked on every rank after every minibatch): then a snapshot here,
        # inside the tick, and the tick's end where it would have been once the run resumes.
        done = (cur_nimg >= total_kimg * 1000)
        tick_end = done or cur_tick == 0 or cur_nimg >= tick_start_nimg + kimg_per_tick * 1000
        preempted = preemption.agreed(num_gpus, device) and not done
        if not tick_end and not preempted:
            continue
        if diffusion is not None:
            num, total = take_moments(ada_stats, 'Loss/signs/real')
            ada_pending = (ada_pending[0] + num, ada_pending[1] + total)

        # Everything from here to the next minibatch (images, metrics, ...) leaves the training RNGs as they are
        # now: the state a snapshot stores is the one the next minibatch starts from.
        rng_state = snapshot.capture_rng_state(device)

        # Tick report.
        tick_end_time = time.time()
        training_stats.report0('Progress/tick', cur_tick)
        training_stats.report0('Progress/kimg', cur_nimg / 1e3)
        training_stats.report0('Timing/total_sec', prev_sec + tick_end_time - start_time)
        training_stats.report0('Timing/sec_per_tick', tick_end_time - tick_start_time)
        training_stats.report0('Timing/sec_per_kimg', (tick_end_time - tick_start_time) / max(cur_nimg - tick_start_nimg, 1) * 1e3)
        training_stats.report0('Timing/maintenance_sec', maintenance_time)
        training_stats.report0('Resources/peak_cpu_mem_gb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
        if device.type == 'cuda':
            training_stats.report0('Resources/peak_gpu_mem_gb', torch.cuda.max_memory_allocated(device) / 2**30)
            torch.cuda.reset_peak_memory_stats()
        if diffusion is not None:
            training_stats.report0('Progress/diffusion_p', diffusion.p)
            if diffusion.diffuse:
                training_stats.report0('Progress/diffusion_T', diffusion.T)
        for name, companion in companions.items():
            training_stats.report0(f'Progress/{name}_p', companion.p)
            training_stats.report0(f'Progress/{name}_T', companion.T)
        stats_collector.update()
        stats_dict = dnnlib.EasyDict({name: value for name, value in stats_collector.as_dict().items() if value.num > 0})
        if rank == 0:
            fields = [f"tick {cur_tick:<5d}", f"kimg {cur_nimg / 1e3:<8.1f}",
                      f"time {dnnlib.util.format_time(prev_sec + tick_end_time - start_time):<12s}",
                      f"sec/tick {tick_end_time - tick_start_time:<7.1f}",
                      f"sec/kimg {stats_dict['Timing/sec_per_kimg'].mean:<7.2f}",
                      f"maintenance {maintenance_time:<6.1f}",
                      f"cpumem {stats_dict['Resources/peak_cpu_mem_gb'].mean:<6.2f}"]
            for key, label in [('Loss/G/loss', 'loss_G'), ('Loss/D/loss', 'loss_D'), ('Loss/scores/real', 'D_real'), ('Loss/scores/fake', 'D_fake')]:
                if key in stats_dict:
                    fields.append(f"{label} {stats_dict[key].mean:<7.3f}")
            if diffusion is not None:
                fields.append(f"p {diffusion.p:<6.3f}")
                if diffusion.diffuse:
                    fields.append(f"T {diffusion.T:<4d}")
            message = ' '.join(fields)
            if pbar is not None:
                pbar.write(message, file=sys.stdout)
            else:
                print(message)

        # Statistics to disk before the snapshot: a process killed in between logged a tick that its snapshot does
        # not hold, which the run resumed from an earlier snapshot drops (trim_logs) and logs anew.
        timestamp = time.time()
        if stats_jsonl is not None:
            stats_jsonl.write(json.dumps(dict(stats_dict, timestamp=timestamp)) + '\n')
            stats_jsonl.flush()

        # Divergence: NaN/Inf losses, and every optimizer step of the tick had non-finite gradients (zeroed out, so
        # the run has stopped learning). Stop before this tick writes a snapshot.
        losses = [stats_dict[key].mean for key in ['Loss/G/loss', 'Loss/D/loss'] if key in stats_dict]
        if 'Progress/nonfinite_steps' in stats_dict and stats_dict['Progress/nonfinite_steps'].mean == 1 and not all(np.isfinite(losses)):
            if stats_jsonl is not None:
                stats_jsonl.close()
            raise dnnlib.UserError(f'training diverged at tick {cur_tick} (kimg {cur_nimg / 1e3:g}): the losses were NaN/Inf and every '
                                   f'optimizer step of the tick had non-finite gradients; last good snapshot: {last_snapshot or "none"}')

        # Image snapshot.
        if rank == 0 and tick_end and image_snapshot_ticks is not None and (done or cur_tick % image_snapshot_ticks == 0):
            images = torch.cat([G_ema(z=z, c=c, noise_mode='const').cpu() for z, c in zip(grid_z, grid_c)]).numpy()
            save_image_grid(images, os.path.join(run_dir, f'fakes{cur_nimg // 1000:06d}.png'), drange=[-1, 1], grid_size=grid_size)

        # Every rank must hold the same networks and diffusion state; a drift is a bug, caught at each snapshot.
        # (Running statistics of each rank's own data may differ, as in the anchors: RANK_LOCAL_BUFFERS.)
        snapshot_due = preempted or (network_snapshot_ticks is not None and (done or cur_tick % network_snapshot_ticks == 0))
        if num_gpus > 1 and snapshot_due:
            for module in networks.values():
                misc.check_ddp_consistency(module, ignore_regex=RANK_LOCAL_BUFFERS)
            states = [None] * num_gpus
            torch.distributed.all_gather_object(states, [d.get_state() for d in [diffusion, *companions.values()] if d is not None])
            if any(state != states[0] for state in states):
                raise RuntimeError(f'Diffusion state differs across ranks at tick {cur_tick}: {states}')

        # Network snapshot: CPU copies of the networks, the diffusion (stored as augment_pipe, as the official
        # release does) and the resume state, with the weights also in the safe format, all written atomically
        # (the .pkl last: a .pkl on disk implies its companions were complete before it).
        snapshot_data = None
        if snapshot_due:
            rank_states = [dict(rng=rng_state, loss={name: value.detach().cpu().clone() for name, value in vars(loss).items() if isinstance(value, torch.Tensor)})]
            if num_gpus > 1:
                own_state = rank_states[0]
                rank_states = [None] * num_gpus
                torch.distributed.all_gather_object(rank_states, own_state)
        if rank == 0 and snapshot_due:
            snapshot_data = dict(training_set_kwargs=dict(training_set_kwargs), family=family, network_kwargs=copy.deepcopy(network_kwargs))
            for name, module in [*networks.items(), ('augment_pipe', diffusion), *companions.items()]:
                if module is not None:
                    module = misc.deepcopy_module(module).eval().requires_grad_(False).cpu()
                snapshot_data[name] = module
            snapshot_data['diffusion_state'] = diffusion.get_state() if diffusion is not None else None
            snapshot_data['progress'] = dict(cur_nimg=cur_nimg, cur_tick=cur_tick, batch_idx=batch_idx)
            snapshot_data['resume_state'] = dict(cur_nimg=cur_nimg, cur_tick=cur_tick, batch_idx=batch_idx, total_sec=prev_sec + tick_end_time - start_time,
                mid_tick=not tick_end, tick_start_nimg=tick_start_nimg,
                optimizers={name: snapshot.to_cpu(opt.state_dict()) for name, opt in optimizers.items()},
                diffusion=dict(state=diffusion.get_state(), rng=diffusion._rng.bit_generator.state) if diffusion is not None else None,
                companions={name: dict(state=d.get_state(), rng=d._rng.bit_generator.state) for name, d in companions.items()},
                ada_pending=ada_pending, ranks=rank_states, options=options, stats_metrics=dict(stats_metrics), best_metrics=copy.deepcopy(best_metrics))
            snapshot_base = os.path.join(run_dir, f'network-snapshot-{cur_nimg // 1000:06d}')
            safe_networks = dict()
            for name in networks:
                kwargs = network_kwargs[source_network.get(name, name)]
                init_kwargs = dict({key: value for key, value in kwargs.items() if key != 'class_name'}, **common_kwargs)
                safe_networks[name] = (kwargs['class_name'], init_kwargs, snapshot_data[name])
            safe_info = dict(family=family, training_set_kwargs=snapshot_data['training_set_kwargs'], diffusion_state=snapshot_data['diffusion_state'], progress=snapshot_data['progress'])
            try:
                snapshot.save_safe(snapshot_base, networks=safe_networks, info=safe_info)
                snapshot.write_atomic(snapshot_base + '.pkl', pickle.dumps(snapshot_data))
            except OSError as err:
                raise dnnlib.UserError(f'{snapshot_base}.pkl: cannot write the snapshot ({err.strerror or err}); last good snapshot: {last_snapshot or "none"}') from err
            last_snapshot = snapshot_base + '.pkl'

        # Metrics of G_ema at each network snapshot, on every rank; a detector that cannot be had (offline) costs
        # that metric, not the run. The snapshot is rewritten with them, so that a resume knows the best so far.
        # Not at a preemption, which leaves too little time.
        if len(metrics) > 0 and snapshot_due and not preempted:
            if rank == 0:
                print(f'Evaluating metrics {", ".join(metrics)}...')
            for metric in metrics:
                try:
                    result_dict = metric_main.calc_metric(metric=metric, G=G_ema, dataset_kwargs=training_set_kwargs, num_gpus=num_gpus, rank=rank, device=device)
                except dnnlib.UserError as err:
                    if rank == 0:
                        print(f'Skipping metric {metric}: {err}')
                    continue
                if rank == 0:
                    metric_main.report_metric(result_dict, run_dir=run_dir, snapshot_pkl=last_snapshot)
                stats_metrics.update(result_dict.results)
                for name, value in result_dict.results.items():
                    if name not in best_metrics or is_better(name, value, best_metrics[name]['value']):
                        best_metrics[name] = dict(value=value, kimg=cur_nimg / 1e3, snapshot=os.path.basename(last_snapshot or ''))
            if snapshot_data is not None:
                snapshot_data['resume_state'].update(stats_metrics=dict(stats_metrics), best_metrics=copy.deepcopy(best_metrics))
                try:
                    snapshot.write_atomic(last_snapshot, pickle.dumps(snapshot_data))
                except OSError as err:
                    raise dnnlib.UserError(f'{last_snapshot}: cannot add the metrics to the snapshot ({err.strerror or err}); the snapshot without them is intact') from err

        # Statistics to TensorBoard.
        if stats_tfevents is not None:
            global_step = int(cur_nimg / 1e3)
            walltime = timestamp - start_time
            for name, value in stats_dict.items():
                stats_tfevents.add_scalar(name, value.mean, global_step=global_step, walltime=walltime)
            for name, value in stats_metrics.items():
                stats_tfevents.add_scalar(f'Metrics/{name}', value, global_step=global_step, walltime=walltime)
            stats_tfevents.flush()

        snapshot.restore_rng_state(rng_state, device)
        if preempted or done:
            break
        cur_tick += 1
        tick_start_nimg = cur_nimg
        tick_start_time = time.time()
        maintenance_time = tick_start_time - tick_end_time

    if pbar is not None:
        pbar.close()
    if stats_jsonl is not None:
        stats_jsonl.close()
    if stats_tfevents is not None:
        stats_tfevents.close()
    if rank == 0:
        print()
        print(f'Preempted at kimg {cur_nimg / 1e3:g} (tick {cur_tick}): snapshot {last_snapshot}; exiting with code {preemption.PREEMPTED_EXIT_CODE}, rerun with --resume=auto to continue'
              if preempted else 'Exiting...')
    return not preempted

#----------------------------------------------------------------------------

"""Step-for-step equivalence of our training step with the official Diffusion-GAN code (diffusion-stylegan2).

Runs our real training loop (training/training_loop.py) for --iters minibatches with small StyleGAN2 networks
and every published loss term switched on (style mixing, path length every 4 minibatches, R1 every 16, the
adaptive diffusion adapted every 4), recording what each loss call received. Then, in a second process that
imports only the official checkout, builds the official G, D, loss and Diffusion, copies our initial weights,
replays the same reals and latents through the four phases (Gmain, Greg, Dmain, Dreg) with the official loop's
optimizer, gain, EMA and p/T arithmetic, and records the same state. Every random draw inside a training step
(style-mixing cutoff and latents, synthesis noise, path-length noise, the diffusion's timesteps, noise and
timestep pools) comes on both sides from one seeded stream (RandomTape), patched in for the draws of both codes,
so the two runs see the same numbers. Prints, after each minibatch, the largest parameter differences of G, D
and G_ema, and p and T on both sides. The official code is not part of this repository: pass its path.

    git clone https://github.com/Zhendong-Wang/Diffusion-GAN
    python tools/official_equivalence.py --official=Diffusion-GAN/diffusion-stylegan2 --iters=32 --control
    python tools/official_equivalence.py --official=Diffusion-GAN/diffusion-stylegan2 --cfg=demo --control

--cfg picks our preset (its loss terms; networks shrunk to 16x16). --control runs the official code a second time
from weights nudged by two float32 rounding steps in one place: how much rounding alone grows in that configuration
(with a weak R1, as in the demo preset, it grows to 1e-2 within 20 minibatches in the official code itself).

The official side needs its two NumPy-era names (np.int) and runs on the CPU; nothing else of it is changed."""

import contextlib
import copy
import json
import os
import subprocess
import sys
import tempfile

import click
import numpy as np
import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#----------------------------------------------------------------------------

class RandomTape:
    """One seeded stream for every random draw of a training step, in call order. Installed, it takes over
    torch.randn/randn_like/rand/randint, Tensor.random_ and np.random.choice while active(), so both codes draw
    identical values as long as they draw the same things in the same order (which the comparison then shows)."""
    def __init__(self, seed: int):
        self.rng = np.random.RandomState(seed)
        self.depth = 0

    @contextlib.contextmanager
    def active(self):
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1

    def normal(self, shape, like=None, dtype=None, device=None):
        x = torch.from_numpy(self.rng.standard_normal(list(shape)).astype(np.float32))
        return x.to(dtype=dtype or (like.dtype if like is not None else torch.float32), device=device or (like.device if like is not None else 'cpu'))

    def uniform(self, shape, dtype=None, device=None):
        return torch.from_numpy(self.rng.random_sample(list(shape)).astype(np.float32)).to(dtype=dtype or torch.float32, device=device or 'cpu')

    def integers(self, low: int, high: int, size=()) -> np.ndarray:
        return self.rng.randint(low, high, size=(size,) if np.isscalar(size) else tuple(size)).astype(np.int64)

    def choice(self, a, size=None, replace=True, p=None):
        a = np.arange(a) if np.isscalar(a) else np.asarray(a)
        shape = () if size is None else (size,) if np.isscalar(size) else tuple(size)
        if p is None:
            return a[self.integers(0, len(a), shape)]
        cdf = np.cumsum(np.asarray(p, dtype=np.float64))
        index = np.searchsorted(cdf / cdf[-1], self.rng.random_sample(shape), side='right')
        return a[np.minimum(index, len(a) - 1)]

    def install(self) -> None:
        tape = self
        def shape_of(args):
            return tuple(args[0]) if len(args) == 1 and isinstance(args[0], (list, tuple, torch.Size)) else tuple(args)
        def patch(owner, name, replacement):
            original = getattr(owner, name)
            def dispatch(*args, **kwargs):
                return replacement(*args, **kwargs) if tape.depth > 0 else original(*args, **kwargs)
            setattr(owner, name, dispatch)
        patch(torch, 'randn', lambda *size, dtype=None, device=None, **_: tape.normal(shape_of(size), dtype=dtype, device=device))
        patch(torch, 'randn_like', lambda x, dtype=None, device=None, **_: tape.normal(x.shape, like=x, dtype=dtype, device=device))
        patch(torch, 'rand', lambda *size, dtype=None, device=None, **_: tape.uniform(shape_of(size), dtype=dtype, device=device))
        def randint(*args, dtype=torch.int64, device=None, **_):
            low, high, size = (0, *args) if len(args) == 2 else args
            return torch.from_numpy(tape.integers(low, high, size)).to(dtype=dtype, device=device or 'cpu')
        patch(torch, 'randint', randint)
        def random_(x, low, high):
            return x.copy_(torch.from_numpy(tape.integers(low, high, x.shape)))
        patch(torch.Tensor, 'random_', random_)
        patch(np.random, 'choice', tape.choice)

#----------------------------------------------------------------------------

def tiny_config(run_dir: str, cfg: str, iters: int, batch: int, seed: int):
    """Our training configuration: a preset (stylegan2: path length, style mixing, lazy regularization, resnet D,
    skip G) on the built-in digits at 16x16 with tiny widths, and a diffusion that moves within a few minibatches."""
    sys.path.insert(0, REPO_ROOT)
    import dnnlib
    import train
    with train.main.make_context('train.py', ['--outdir', run_dir, '--cfg', cfg, '--batch', str(batch), '--seed', str(seed), '--metrics', 'none']) as ctx:
        c, _desc = train.build_config(dnnlib.EasyDict(ctx.params))
    c.training_set_kwargs.update(resolution=16, max_size=256)
    for kwargs in c.network_kwargs.values():
        kwargs.update(channel_base=256, channel_max=16, num_fp16_res=0, conv_clamp=None)
    c.network_kwargs.G.update(z_dim=16, w_dim=16, mapping_kwargs=dict(num_layers=2))
    c.network_kwargs.D.mapping_kwargs = dict(num_layers=2)
    c.diffusion_kwargs.update(ada_kimg=1, t_max=100, target=0.05) # p moves batch*4/1000 per update: T changes
    c.update(run_dir=run_dir, rank=0, progress_bar=False, total_kimg=iters * batch / 1000, kimg_per_tick=1e9,
             image_snapshot_ticks=None, network_snapshot_ticks=None, reg_intervals=dict(G=4, D=16), ada_interval=4)
    return c

def params_of(module: torch.nn.Module) -> dict:
    return {name: param.detach().clone() for name, param in module.named_parameters()}

def run_ours(exchange: str, cfg: str, iters: int, batch: int, seed: int, tape_seed: int) -> None:
    """Our real training loop, with the tape inside the loss and the diffusion's pool draws; records each loss
    call's inputs and, after every minibatch's EMA update, the parameters and the diffusion's p and T."""
    with tempfile.TemporaryDirectory() as run_dir:
        c = tiny_config(os.path.join(run_dir, 'run'), cfg=cfg, iters=iters, batch=batch, seed=seed)
        os.makedirs(c.run_dir)
        from training import training_loop
        from training.diffusion import Diffusion
        from training.loss import StyleGAN2Loss
        tape = RandomTape(tape_seed)
        tape.install()
        record = dict(config=dict(G_kwargs=c.network_kwargs.G, D_kwargs=c.network_kwargs.D, G_opt_kwargs=c.opt_kwargs.G, D_opt_kwargs=c.opt_kwargs.D,
                      loss_kwargs=c.loss_kwargs, diffusion_kwargs=c.diffusion_kwargs, batch_size=c.batch_size, ema_kimg=c.ema_kimg,
                      ema_rampup=c.ema_rampup, G_reg_interval=4, D_reg_interval=16, ada_interval=4), init=None, iterations=[], states=[])
        calls = []
        state = dict()

        accumulate = StyleGAN2Loss.accumulate_gradients
        def recording_accumulate(self, phase, real_img, real_c, gen_z, gen_c, gain, cur_nimg):
            if record['init'] is None:
                record['init'] = dict(G=copy.deepcopy(self.G.state_dict()), D=copy.deepcopy(self.D.state_dict()))
                state.update(D=self.D, diffusion=self.diffusion)
            calls.append(dict(phase=phase, real_img=real_img.clone(), real_c=real_c.clone(), gen_z=gen_z.clone(), gen_c=gen_c.clone(), gain=gain))
            with tape.active():
                accumulate(self, phase=phase, real_img=real_img, real_c=real_c, gen_z=gen_z, gen_c=gen_c, gain=gain, cur_nimg=cur_nimg)
        StyleGAN2Loss.accumulate_gradients = recording_accumulate

        draw_timesteps = Diffusion._draw_timesteps
        def taped_draw_timesteps(self, size):
            own_rng, self._rng = self._rng, tape
            try:
                with tape.active():
                    return draw_timesteps(self, size)
            finally:
                self._rng = own_rng
        Diffusion._draw_timesteps = taped_draw_timesteps

        update_ema = training_loop.update_ema
        def recording_update_ema(G_ema, G, **kwargs):
            update_ema(G_ema=G_ema, G=G, **kwargs)
            record['iterations'].append(list(calls))
            calls.clear()
            diffusion = state['diffusion']
            record['states'].append(dict(G=params_of(G), D=params_of(state['D']), G_ema=params_of(G_ema), p=diffusion.p, T=diffusion.T))
        training_loop.update_ema = recording_update_ema
        training_loop.training_loop(**c)
    torch.save(record, exchange)

#----------------------------------------------------------------------------

def nudge_largest_weight(state_dict: dict, name: str) -> dict:
    """A copy with the largest-magnitude element of one tensor moved by two float32 rounding steps (x (1 + 2^-22))."""
    state_dict = dict(state_dict)
    value = state_dict[name].clone()
    flat = value.view(-1)
    index = flat.abs().argmax()
    flat[index] = flat[index] * (1 + 2 ** -22)
    state_dict[name] = value
    return state_dict

def run_official(exchange: str, official: str, tape_seed: int, nudge: bool) -> None:
    """The official code (imported from its checkout only) replaying our recorded inputs. The loop arithmetic
    follows diffusion-stylegan2/training/training_loop.py: lazy-regularization lr and betas, gain = interval,
    nan_to_num on the gradients, Adam, G_ema with half-life ema_kimg, and p += sign(r_d - target) * batch *
    ada_interval / (ada_kimg * 1000) clipped to [0, 1] followed by update_T(), every ada_interval minibatches."""
    np.int = int # removed in NumPy 1.24; the official diffusion.py still uses it
    sys.path.insert(0, official)
    import dnnlib
    from torch_utils import training_stats
    from training import diffusion as diffusion_module
    from training import loss as loss_module
    from training import networks
    assert networks.__file__.startswith(os.path.abspath(official)), networks.__file__
    record = torch.load(exchange, weights_only=False)
    cfg = dnnlib.EasyDict(record['config'])
    tape = RandomTape(tape_seed)
    tape.install()
    training_stats.init_multiprocessing(rank=0, sync_device=None)

    update_T = diffusion_module.Diffusion.update_T
    def taped_update_T(self):
        with tape.active():
            update_T(self)
    diffusion_module.Diffusion.update_T = taped_update_T

    device = torch.device('cpu')
    res, channels = 16, 1
    Gk, Dk = cfg.G_kwargs, cfg.D_kwargs
    G = networks.Generator(z_dim=Gk['z_dim'], c_dim=0, w_dim=Gk['w_dim'], img_resolution=res, img_channels=channels, mapping_kwargs=Gk['mapping_kwargs'],
        synthesis_kwargs=dict(channel_base=Gk['channel_base'], channel_max=Gk['channel_max'], num_fp16_res=0, conv_clamp=None, architecture=Gk['architecture']))
    D = networks.Discriminator(c_dim=0, img_resolution=res, img_channels=channels, architecture=Dk['architecture'], channel_base=Dk['channel_base'],
        channel_max=Dk['channel_max'], num_fp16_res=0, conv_clamp=None, mapping_kwargs=Dk['mapping_kwargs'], epilogue_kwargs=Dk['epilogue_kwargs'])
    G.load_state_dict(nudge_largest_weight(record['init']['G'], 'synthesis.b16.conv0.weight') if nudge else record['init']['G'])
    D.load_state_dict(record['init']['D'])
    G.train().requires_grad_(False)
    D.train().requires_grad_(False)
    G_ema = copy.deepcopy(G).eval()
    dk = cfg.diffusion_kwargs
    diffusion = diffusion_module.Diffusion(beta_schedule=dk.get('beta_schedule', 'linear'), beta_start=dk.get('beta_start', 1e-4), beta_end=dk.get('beta_end', 2e-2),
        t_min=dk.get('t_min', 10), t_max=dk['t_max'], noise_std=dk.get('noise_sd', 0.05), aug='no', ts_dist=dk.get('ts_dist', 'priority')).train().requires_grad_(False)
    lk = cfg.loss_kwargs
    loss = loss_module.StyleGAN2Loss(device=device, G_mapping=G.mapping, G_synthesis=G.synthesis, D=D, Diffusion=diffusion,
        style_mixing_prob=lk['style_mixing_prob'], r1_gamma=lk['r1_gamma'], pl_weight=lk['pl_weight'])

    phases = dict()
    for name, module, opt_kwargs, reg_interval in [('G', G, cfg.G_opt_kwargs, cfg.G_reg_interval), ('D', D, cfg.D_opt_kwargs, cfg.D_reg_interval)]:
        mb_ratio = reg_interval / (reg_interval + 1)
        opt = torch.optim.Adam(module.parameters(), lr=opt_kwargs['lr'] * mb_ratio, betas=[beta ** mb_ratio for beta in opt_kwargs['betas']], eps=opt_kwargs['eps'])
        phases[name + 'main'] = dnnlib.EasyDict(module=module, opt=opt, interval=1)
        phases[name + 'reg'] = dnnlib.EasyDict(module=module, opt=opt, interval=reg_interval)
    ada_stats = training_stats.Collector(regex='Loss/signs/real')

    states = []
    cur_nimg = 0
    batch_idx = 0
    for calls in record['iterations']:
        for phase_name in dict.fromkeys(call['phase'] for call in calls): # the phases that ran, in order
            phase = phases[phase_name]
            phase.opt.zero_grad(set_to_none=True)
            phase.module.requires_grad_(True)
            for call in [call for call in calls if call['phase'] == phase_name]:
                assert call['gain'] == phase.interval
                with tape.active():
                    loss.accumulate_gradients(phase=phase_name, real_img=call['real_img'], real_c=call['real_c'], gen_z=call['gen_z'], gen_c=call['gen_c'], sync=True, gain=phase.interval)
            phase.module.requires_grad_(False)
            for param in phase.module.parameters():
                if param.grad is not None:
                    torch.nan_to_num(param.grad, nan=0, posinf=1e5, neginf=-1e5, out=param.grad)
            phase.opt.step()
        ema_nimg = cfg.ema_kimg * 1000
        if cfg.ema_rampup is not None:
            ema_nimg = min(ema_nimg, cur_nimg * cfg.ema_rampup)
        ema_beta = 0.5 ** (cfg.batch_size / max(ema_nimg, 1e-8))
        for p_ema, p in zip(G_ema.parameters(), G.parameters()):
            p_ema.copy_(p.lerp(p_ema, ema_beta))
        for b_ema, b in zip(G_ema.buffers(), G.buffers()):
            b_ema.copy_(b)
        states.append(dict(G=params_of(G), D=params_of(D), G_ema=params_of(G_ema), p=float(diffusion.p), T=int(diffusion.num_timesteps)))
        cur_nimg += cfg.batch_size
        batch_idx += 1
        if batch_idx % cfg.ada_interval == 0:
            ada_stats.update()
            adjust = np.sign(ada_stats['Loss/signs/real'] - dk['target']) * (cfg.batch_size * cfg.ada_interval) / (dk['ada_kimg'] * 1000)
            diffusion.p = float(np.clip(diffusion.p + adjust, 0, 1))
            diffusion.update_T()
    torch.save(states, exchange + ('.nudged' if nudge else '.official'))

#----------------------------------------------------------------------------

def max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys(), sorted(set(a) ^ set(b))
    return max(float((a[name].double() - b[name].double()).abs().max()) for name in a)

@click.command()
@click.option('--official', help='Path of the official diffusion-stylegan2 folder (Zhendong-Wang/Diffusion-GAN)', metavar='DIR', required=True)
@click.option('--cfg', help='Preset of ours (its loss terms and networks, at 16x16 with tiny widths)', default='stylegan2', show_default=True)
@click.option('--iters', help='Minibatches to compare', type=click.IntRange(min=1), default=32, show_default=True)
@click.option('--batch', help='Minibatch size', type=click.IntRange(min=2), default=8, show_default=True)
@click.option('--seed', help='Training seed (weights, data order, latents)', type=int, default=0, show_default=True)
@click.option('--tape-seed', help='Seed of the random draws inside the training step', type=int, default=1, show_default=True)
@click.option('--control', help='Also run the official code from weights nudged by 2 rounding steps in one place, to show how much float rounding alone grows in this configuration', is_flag=True)
@click.option('--side', type=click.Choice(['both', 'ours', 'official', 'nudged']), default='both', hidden=True)
@click.option('--exchange', hidden=True)
def main(official, cfg, iters, batch, seed, tape_seed, control, side, exchange):
    """Compare our training step with the official Diffusion-GAN code, minibatch by minibatch."""
    official = os.path.abspath(official)
    if not os.path.isfile(os.path.join(official, 'training', 'diffusion.py')):
        raise click.BadParameter(f'{official}: expected the diffusion-stylegan2 folder of the official release (with training/diffusion.py)', param_hint='--official')
    torch.set_num_threads(1) # after the checks: a caller that gets the bad-input line keeps its own settings
    torch.use_deterministic_algorithms(True)
    if side == 'ours':
        return run_ours(exchange, cfg=cfg, iters=iters, batch=batch, seed=seed, tape_seed=tape_seed)
    if side in ['official', 'nudged']:
        return run_official(exchange, official=official, tape_seed=tape_seed, nudge=(side == 'nudged'))
    with tempfile.TemporaryDirectory() as tmp:
        exchange = os.path.join(tmp, 'record.pt')
        # Two processes: both codes call their packages training, torch_utils and dnnlib.
        common = ['--official', official, '--cfg', cfg, '--iters', str(iters), '--batch', str(batch), '--seed', str(seed), '--tape-seed', str(tape_seed), '--exchange', exchange]
        for which, cwd in [('ours', REPO_ROOT), ('official', official)] + [('nudged', official)] * control:
            result = subprocess.run([sys.executable, os.path.abspath(__file__), '--side', which, *common], cwd=cwd, capture_output=True, text=True)
            if result.returncode != 0:
                sys.exit(f'official_equivalence.py: the {which} side failed:\n{result.stderr[-4000:]}')
        ours = torch.load(exchange, weights_only=False)
        theirs = torch.load(exchange + '.official', weights_only=False)
        nudged = torch.load(exchange + '.nudged', weights_only=False) if control else None
    phases_per_iteration = [','.join(dict.fromkeys(call['phase'] for call in calls)) for calls in ours['iterations']]
    print(f'{"iter":>4}  {"phases":<22} {"max|dG|":>9} {"max|dD|":>9} {"max|dG_ema|":>11}  {"p ours":>7} {"p off.":>7}  {"T ours":>6} {"T off.":>6}' + ('  control: max|dG|, max|dD|' if control else ''))
    worst = 0.0
    for i, (a, b) in enumerate(zip(ours['states'], theirs)):
        dG, dD, dE = (max_difference(a[k], b[k]) for k in ['G', 'D', 'G_ema'])
        worst = max(worst, dG, dD, dE)
        line = f'{i:>4}  {phases_per_iteration[i]:<22} {dG:>9.2e} {dD:>9.2e} {dE:>11.2e}  {a["p"]:>7.4f} {b["p"]:>7.4f}  {a["T"]:>6d} {b["T"]:>6d}'
        if control:
            line += f'  {max_difference(nudged[i]["G"], b["G"]):>9.2e} {max_difference(nudged[i]["D"], b["D"]):>9.2e}'
        print(line)
    same_pT = all(a['p'] == b['p'] and a['T'] == b['T'] for a, b in zip(ours['states'], theirs))
    result = dict(iterations=len(theirs), max_param_difference=worst, same_p_and_T=same_pT)
    if control:
        result['control_max_param_difference'] = max(max_difference(n[k], b[k]) for n, b in zip(nudged, theirs) for k in ['G', 'D', 'G_ema'])
    print(json.dumps(result))

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main()

#----------------------------------------------------------------------------

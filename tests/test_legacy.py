"""Tests of legacy.py: our snapshots, a hand-made official-style pickle (version-6 persistence metas with their
own module source, PyTorch 1.x module state) that loads, runs and goes through generate.py, snapshots as the
official Diffusion-GAN training loops write them (their diffusion object, with helper classes referenced by module
names this codebase lacks, and a 'progress' dict), force_fp16, and one-line errors naming the file for everything
that is not a usable network pickle."""

import collections
import copy
import importlib
import inspect
import io
import os
import pickle
import sys
import textwrap
import types
import zipfile

import numpy as np
import PIL.Image
import pytest
import torch

import dnnlib
import generate
import legacy
from dnnlib.cli import run_cli
from torch_utils import misc
from torch_utils import persistence
from training import insgen
from training import networks_stylegan2 as net
from training.diffusion import Diffusion

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data')

#----------------------------------------------------------------------------
# An official-style network module: self-contained source that uses the framework names official pickles
# import (dnnlib, persistence, misc, bias_act), with StyleGAN2-ADA's nested synthesis_kwargs and float16
# layers that, like official networks on an old PyTorch, cannot run on the CPU unless told force_fp32.

_TOY_SRC = textwrap.dedent('''
    import torch
    import dnnlib
    from torch_utils import misc
    from torch_utils import persistence
    from torch_utils.ops import bias_act

    @persistence.persistent_class
    class ToyGenerator(torch.nn.Module):
        def __init__(self, z_dim, c_dim, img_resolution, img_channels, synthesis_kwargs={}):
            super().__init__()
            self.z_dim = z_dim
            self.c_dim = c_dim
            self.img_resolution = img_resolution
            self.img_channels = img_channels
            self.use_fp16 = synthesis_kwargs.get('num_fp16_res', 0) > 0
            self.conv_clamp = synthesis_kwargs.get('conv_clamp', None)
            num_out = img_channels * img_resolution ** 2
            self.weight = torch.nn.Parameter(torch.zeros([z_dim + c_dim, num_out]))
            self.bias = torch.nn.Parameter(torch.zeros([num_out]))
            self.register_buffer('w_avg', torch.zeros([num_out]))

        def forward(self, z, c, truncation_psi=1, noise_mode='random', force_fp32=False):
            misc.assert_shape(z, [None, self.z_dim])
            misc.assert_shape(c, [None, self.c_dim])
            if self.use_fp16 and not force_fp32 and z.device.type == 'cpu':
                raise RuntimeError('"addmm_impl_cpu_" not implemented for Half')
            x = torch.cat([z.to(torch.float32), c.to(torch.float32)], dim=1) @ self.weight
            x = self.w_avg.lerp(x, truncation_psi)
            x = bias_act.bias_act(x, self.bias, act='tanh')
            return x.reshape([-1, self.img_channels, self.img_resolution, self.img_resolution])

    @persistence.persistent_class
    class ToyDiscriminator(torch.nn.Module):
        def __init__(self, c_dim, img_resolution, img_channels, num_fp16_res=0, conv_clamp=None):
            super().__init__()
            self.fc = torch.nn.Linear(img_channels * img_resolution ** 2 + c_dim, 1)

        def forward(self, img, c):
            return self.fc(torch.cat([img.flatten(1), c], dim=1))
''')

class _Persistent:
    """Pickles as an official persistent object: a call of persistence._reconstruct_persistent_obj(meta)."""
    def __init__(self, meta):
        self.meta = meta
    def __reduce__(self):
        return (persistence._reconstruct_persistent_obj, (self.meta,))

def _module_state(parameters, buffers=None, modules=None, **attrs):
    """nn.Module state in the layout PyTorch 1.7 pickled (the official StyleGAN2-ADA pickles), fewer hook dicts."""
    empty = collections.OrderedDict
    state = dict(training=False, _parameters=empty((k, torch.nn.Parameter(v, requires_grad=False)) for k, v in parameters.items()),
        _buffers=empty(buffers or {}), _non_persistent_buffers_set=set(), _backward_hooks=empty(), _forward_hooks=empty(),
        _forward_pre_hooks=empty(), _state_dict_hooks=empty(), _load_state_dict_pre_hooks=empty(), _modules=empty(modules or {}))
    state.update(attrs)
    return state

TOY = dict(z_dim=4, c_dim=2, img_resolution=4, img_channels=3)

def official_style_pickle(module_src=_TOY_SRC, seed=0, version=6, **extra):
    """Bytes of an official-style snapshot of the toy networks, plus its weights for reference computations."""
    rnd = np.random.RandomState(seed)
    num_out = TOY['img_channels'] * TOY['img_resolution'] ** 2
    weights = dict(weight=torch.from_numpy(rnd.randn(TOY['z_dim'] + TOY['c_dim'], num_out).astype(np.float32)),
        bias=torch.from_numpy(rnd.randn(num_out).astype(np.float32) * 0.1), w_avg=torch.from_numpy(rnd.randn(num_out).astype(np.float32)))
    synthesis_kwargs = dict(num_fp16_res=2, conv_clamp=None)
    G_state = _module_state(dict(weight=weights['weight'], bias=weights['bias']), buffers=dict(w_avg=weights['w_avg']),
        use_fp16=True, conv_clamp=None, _init_args=(), _init_kwargs=dict(TOY, synthesis_kwargs=synthesis_kwargs), **TOY)
    fc_state = _module_state(dict(weight=torch.zeros([1, num_out + TOY['c_dim']]), bias=torch.zeros([1])), in_features=num_out + TOY['c_dim'], out_features=1)
    fc = torch.nn.Linear(1, 1)
    fc.__setstate__(fc_state)
    D_state = _module_state({}, modules=dict(fc=fc), _init_args=(), _init_kwargs=dict(c_dim=TOY['c_dim'], img_resolution=4, img_channels=3))
    meta = lambda class_name, state: _Persistent(dict(type='class', version=version, module_src=module_src, class_name=class_name, state=state))
    data = dict(G=meta('ToyGenerator', G_state), D=meta('ToyDiscriminator', D_state), G_ema=meta('ToyGenerator', copy.deepcopy(G_state)),
        augment_pipe=None, training_set_kwargs=dnnlib.EasyDict(class_name='training.dataset.ImageFolderDataset', path='toy.zip', use_labels=True))
    data.update(extra)
    return pickle.dumps(data, protocol=4), weights

def toy_reference(weights, z, c, psi):
    """The toy generator in float64 numpy, written independently of its module source."""
    x = np.concatenate([z, c], axis=1) @ weights['weight'].double().numpy()
    w_avg = weights['w_avg'].double().numpy()
    x = np.tanh(w_avg + psi * (x - w_avg) + weights['bias'].double().numpy())
    return x.reshape(-1, TOY['img_channels'], TOY['img_resolution'], TOY['img_resolution'])

#----------------------------------------------------------------------------
# Snapshots as the official Diffusion-GAN training loops write them: next to G, D and G_ema, their diffusion object
# (a persistent class whose module source imports the fork's training.adaaug, which this codebase does not have) and
# a 'progress' dict of tensors. Inside the diffusion, the augmentation is a plain class pickled by reference to the
# fork's module (training.diffusion.Identity, or training.augment.Identity in diffusion-insgen; the fork's
# training.diffaug.DiffAugment for --aug=diff) or a persistent ADA object of the fork's training/adaaug.py source.

_FORK_DIFFUSION_SRC = textwrap.dedent('''
    import numpy as np
    import torch
    from torch_utils import persistence
    from training.diffaug import DiffAugment
    from training.adaaug import AdaAugment

    @persistence.persistent_class
    class Diffusion(torch.nn.Module):
        pass # never executed here: legacy.py converts the state to training.diffusion.Diffusion
''')

_FORK_ADA_SRC = textwrap.dedent('''
    import torch
    from torch_utils import persistence
    from torch_utils.ops import upfirdn2d

    @persistence.persistent_class
    class ADA(torch.nn.Module):
        def __init__(self, p=0.6):
            super().__init__()
            self.p = torch.tensor(p)
''')

def _fork_helper(monkeypatch, module, name, **attrs):
    """An instance of a plain nn.Module class that pickles by reference as module.name (the fork's class), which
    exists here only while monkeypatch is active."""
    helper_class = type(name, (torch.nn.Module,), dict(forward=lambda self, x: x))
    helper_class.__module__ = module
    monkeypatch.setattr(importlib.import_module(module), name, helper_class, raising=False)
    helper = helper_class()
    helper.__dict__.update(attrs)
    return helper

def fork_diffusion(monkeypatch, aug='no', p=0.3125, t_min=10, t_max=1000, ts_dist='priority', fork='stylegan2', seed=0):
    """The diffusion object of an official snapshot: its persistence meta (version 6) and the numbers it holds."""
    T = int(np.clip(t_min + round(p * (t_max - t_min)), t_min, t_max))
    rnd = np.random.RandomState(seed)
    t_epl = np.zeros(64, dtype=np.int64)
    t_epl[:32] = rnd.choice(np.arange(1, T + 1), size=32, p=np.arange(T) / np.arange(T).sum())
    if aug == 'ada':
        aug_module = _Persistent(dict(type='class', version=6, module_src=_FORK_ADA_SRC, class_name='ADA',
            state=_module_state({}, p=torch.tensor(p), _init_args=(), _init_kwargs=dict(p=0.0))))
    elif aug == 'diff':
        aug_module = _fork_helper(monkeypatch, 'training.diffaug', 'DiffAugment', policy='color,translation', channels_first=True)
    else:
        aug_module = _fork_helper(monkeypatch, 'training.augment' if fork == 'insgen' else 'training.diffusion', 'Identity')
    betas = torch.linspace(1e-4, 2e-2, T)
    alphas_bar = torch.cat([torch.ones(1), (1 - betas).cumprod(0)])
    state = _module_state({}, modules=dict(aug=aug_module), p=p, aug_type=aug, ada_maxp=None, noise_type='gauss', base_noise_type='gauss',
        beta_schedule='linear', beta_start=1e-4, beta_end=2e-2, t_min=t_min, t_max=t_max, t_add=t_max - t_min, ts_dist=ts_dist,
        noise_std=0.05, betas=betas, num_timesteps=T, alphas=1 - betas, alphas_bar_sqrt=alphas_bar.sqrt(),
        one_minus_alphas_bar_sqrt=(1 - alphas_bar).sqrt(), t_epl=t_epl, _init_args=(), _init_kwargs=dict(aug=aug, ts_dist=ts_dist))
    meta = _Persistent(dict(type='class', version=6, module_src=_FORK_DIFFUSION_SRC, class_name='AugmentPipe' if fork == 'insgen' else 'Diffusion', state=state))
    return meta, dict(p=p, T=T, t_pool=t_epl)

def fork_progress(p, cur_nimg=40000):
    return dict(cur_nimg=torch.LongTensor([cur_nimg]), cur_tick=torch.LongTensor([10]), cur_p=torch.FloatTensor([p]),
        batch_idx=torch.LongTensor([cur_nimg // 32]), best_fid=9999.0, pl_mean=torch.zeros([]))

def official_training_snapshot(monkeypatch, aug='no', fork='stylegan2', seed=0, networks=None, training_set_kwargs=None):
    """Bytes of a snapshot of an official Diffusion-GAN training loop (toy networks unless `networks` gives G, D
    and G_ema), plus the toy weights and the diffusion numbers it holds."""
    diffusion, numbers = fork_diffusion(monkeypatch, aug=aug, fork=fork)
    key = 'augment_pipe' if fork == 'insgen' else 'diffusion'
    if networks is None:
        data_bytes, weights = official_style_pickle(seed=seed, **{key: diffusion}, progress=fork_progress(numbers['p']))
    else:
        data = dict(networks, training_set_kwargs=training_set_kwargs or dict(class_name='training.dataset.DigitsDataset'), progress=fork_progress(numbers['p']))
        data[key] = diffusion
        data_bytes, weights = pickle.dumps(data, protocol=4), None
    return data_bytes, weights, numbers

def tiny_snapshot(path, **extra):
    torch.manual_seed(0)
    G = net.Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, mapping_kwargs=dict(num_layers=2), channel_base=256, channel_max=16)
    D = net.Discriminator(c_dim=0, img_resolution=16, img_channels=3, channel_base=256, channel_max=16)
    data = dict(G=G, D=D, G_ema=copy.deepcopy(G).eval(), augment_pipe=None, training_set_kwargs=dict(resolution=16), **extra)
    with open(path, 'wb') as f:
        pickle.dump(data, f)
    return data

#----------------------------------------------------------------------------

def test_our_snapshot(tmp_path):
    path = str(tmp_path / 'snapshot.pkl')
    original = tiny_snapshot(path, progress=dict(cur_nimg=4000))
    with open(path, 'rb') as f:
        data = legacy.load_network_pkl(f)
    assert set(data) == {'G', 'D', 'G_ema', 'augment_pipe', 'training_set_kwargs', 'progress'}
    assert type(data['G_ema']) is net.Generator and type(data['D']) is net.Discriminator
    assert data['training_set_kwargs'] == dict(resolution=16) and data['progress'] == dict(cur_nimg=4000)
    z = torch.randn([2, 8])
    c = torch.zeros([2, 0])
    assert torch.equal(data['G_ema'](z, c, noise_mode='const'), original['G_ema'](z, c, noise_mode='const'))
    assert legacy.open_network('file://' + path)['G_ema'].z_dim == 8

def test_missing_optional_entries_are_none(tmp_path):
    path = tmp_path / 'exported.pkl'
    path.write_bytes(pickle.dumps(dict(G_ema=torch.nn.Linear(2, 2))))
    data = legacy.open_network(str(path))
    assert data['G'] is None and data['D'] is None and data['augment_pipe'] is None and data['training_set_kwargs'] is None

def test_official_style_pickle(tmp_path):
    data_bytes, weights = official_style_pickle()
    assert b'torch_utils.persistence' in data_bytes and b'_reconstruct_persistent_obj' in data_bytes
    data = legacy.load_network_pkl(io.BytesIO(data_bytes))
    G, D = data['G_ema'], data['D']
    assert type(G).__name__ == 'ToyGenerator' and type(G).__module__.startswith('_imported_module_')
    assert G.init_kwargs.synthesis_kwargs == dict(num_fp16_res=2, conv_clamp=None)
    assert data['training_set_kwargs'].path == 'toy.zip'
    z = np.random.RandomState(1).randn(3, TOY['z_dim'])
    c = np.eye(2)[[0, 1, 1]]
    img = G(torch.from_numpy(z), torch.from_numpy(c), truncation_psi=0.6, force_fp32=True)
    np.testing.assert_allclose(img.double().numpy(), toy_reference(weights, z, c, 0.6), rtol=1e-5, atol=1e-5)
    assert D(img, torch.from_numpy(c).float()).shape == (3, 1)
    G2 = pickle.loads(pickle.dumps(G)) # rebuilt networks pickle again (resume, then snapshot)
    assert torch.equal(G2(torch.from_numpy(z), torch.from_numpy(c), force_fp32=True), G(torch.from_numpy(z), torch.from_numpy(c), force_fp32=True))

def test_official_style_pickle_through_generate(tmp_path, monkeypatch):
    # generate.py must pass force_fp32 on the CPU (the toy refuses float16 there) and give the official pixels.
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    data_bytes, weights = official_style_pickle(seed=3)
    path = tmp_path / 'official.pkl'
    path.write_bytes(data_bytes)
    outdir = tmp_path / 'out'
    run_cli(generate.main, args=[f'--network={path}', '--seeds=0,5', '--class=1', '--trunc=0.5', f'--outdir={outdir}'], prog='generate.py')
    G = legacy.open_network(str(path))['G_ema']
    for seed in [0, 5]:
        z = torch.from_numpy(np.random.RandomState(seed).randn(1, TOY['z_dim']))
        img = G(z, torch.tensor([[0.0, 1.0]]), truncation_psi=0.5, force_fp32=True)
        expected = (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].numpy()
        with PIL.Image.open(outdir / f'seed{seed:04d}.png') as image:
            np.testing.assert_array_equal(np.array(image), expected)
        reference = toy_reference(weights, z.numpy(), np.array([[0.0, 1.0]]), 0.5)[0].transpose(1, 2, 0)
        assert np.abs(expected.astype(np.float64) - np.clip(reference * 127.5 + 128, 0, 255)).max() < 1 + 1e-4

def test_force_fp16(tmp_path):
    path = str(tmp_path / 'snapshot.pkl')
    original = tiny_snapshot(path)
    with open(path, 'rb') as f:
        data = legacy.load_network_pkl(f, force_fp16=True)
    for key in ['G', 'D', 'G_ema']:
        kwargs = data[key].init_kwargs
        assert kwargs.num_fp16_res == 4 and kwargs.conv_clamp == 256
        for (name, a), (_, b) in zip(original[key].state_dict().items(), data[key].state_dict().items()):
            assert torch.equal(a, b), name
    assert [data['G_ema'].synthesis.b16.use_fp16, data['G_ema'].synthesis.b8.use_fp16, data['G_ema'].synthesis.b4.use_fp16] == [True, True, False]
    z = torch.randn([2, 8])
    c = torch.zeros([2, 0])
    # On the CPU everything still runs in float32, and the clamp at 256 does not bite on these tiny values.
    assert torch.equal(data['G_ema'](z, c, noise_mode='const'), original['G_ema'](z, c, noise_mode='const'))

    # StyleGAN2-ADA nests the precision options in synthesis_kwargs.
    G = legacy.load_network_pkl(io.BytesIO(official_style_pickle()[0]), force_fp16=True)['G_ema']
    assert G.init_kwargs.synthesis_kwargs == dict(num_fp16_res=4, conv_clamp=256) and G.conv_clamp == 256
    assert torch.equal(G.weight, legacy.load_network_pkl(io.BytesIO(official_style_pickle()[0]))['G_ema'].weight)

#----------------------------------------------------------------------------

def _error_of(path):
    with pytest.raises(dnnlib.UserError) as exc:
        legacy.open_network(str(path))
    message = str(exc.value)
    assert '\n' not in message and str(path) in message, message
    return message

def test_errors_name_the_file(tmp_path):
    snapshot = tmp_path / 'snapshot.pkl'
    tiny_snapshot(str(snapshot))
    whole = snapshot.read_bytes()

    cases = dict()
    cases['notes.txt'] = (b'hello, not a pickle\n', 'not a pickle')
    cases['empty.pkl'] = (b'', 'empty file')
    with io.BytesIO() as buf:
        with zipfile.ZipFile(buf, 'w') as z:
            z.writestr('dataset.json', '{}')
        cases['data.zip'] = (buf.getvalue(), 'zip archive')
    cases['truncated.pkl'] = (whole[: len(whole) // 2], 'truncated or corrupt')
    cases['cut_early.pkl'] = (whole[:40], 'truncated or corrupt')
    cases['no_g_ema.pkl'] = (pickle.dumps(dict(G=torch.nn.Linear(1, 1), D=None)), 'no G_ema network in the pickle (keys: G, D)')
    cases['list.pkl'] = (pickle.dumps([1, 2]), 'got list')
    cases['g_ema_str.pkl'] = (pickle.dumps(dict(G_ema='generator')), 'G_ema is a str')
    # TensorFlow StyleGAN2 pickles are tuples of dnnlib.tflib.network.Network objects (GLOBAL, EMPTY_TUPLE, NEWOBJ, STOP).
    cases['stylegan2-ffhq-config-f.pkl'] = (b'\x80\x02cdnnlib.tflib.network\nNetwork\n)\x81.', 'TensorFlow')
    cases['needs_module.pkl'] = (official_style_pickle(module_src=_TOY_SRC.replace('from torch_utils.ops import bias_act', 'from torch_utils.ops import no_such_op'))[0], "cannot import name 'no_such_op'")
    cases['version3.pkl'] = (pickle.dumps(dict(G_ema=_Persistent(dict(type='class', version=3, module_src='', class_name='X', state=None)))), 'version 3')
    for name, (content, expected) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        message = _error_of(path)
        assert expected in message, (name, message)

    assert 'No such file' in _error_of(tmp_path / 'missing.pkl')
    assert _error_of(tmp_path) # a directory

def test_error_names_stream_file(tmp_path):
    path = tmp_path / 'notes.txt'
    path.write_bytes(b'plain text')
    with open(path, 'rb') as f, pytest.raises(dnnlib.UserError, match='notes.txt: expected a network pickle'):
        legacy.load_network_pkl(f)
    with pytest.raises(dnnlib.UserError, match='^network pickle: '):
        legacy.load_network_pkl(io.BytesIO(b'plain text'))

#----------------------------------------------------------------------------

#----------------------------------------------------------------------------
# The persistence wire format version.

class _MetaRecorder(pickle.Unpickler):
    """Reads a pickle, recording the meta of every persistent object instead of rebuilding it."""
    def __init__(self, f):
        super().__init__(f)
        self.metas = []
    def find_class(self, module, name):
        if (module, name) == ('torch_utils.persistence', '_reconstruct_persistent_obj'):
            return lambda meta: self.metas.append(meta)
        return super().find_class(module, name)

def persistent_metas(data_bytes):
    recorder = _MetaRecorder(io.BytesIO(data_bytes))
    recorder.load()
    return recorder.metas

def test_our_pickles_say_version_6(tmp_path):
    # The official loaders assert meta['version'] == 6 on every persistent object; each meta carries the full source
    # of the module that defines its class.
    path = tmp_path / 'snapshot.pkl'
    tiny_snapshot(str(path))
    metas = persistent_metas(path.read_bytes())
    assert {meta['version'] for meta in metas} == {6} # every persistent layer, not only the networks
    assert {meta['type'] for meta in metas} == {'class'}
    assert {'Generator', 'Discriminator', 'SynthesisLayer'} <= {meta['class_name'] for meta in metas}
    source = inspect.getsource(net)
    assert all(meta['module_src'] == source and meta['class_name'] in vars(net) for meta in metas)

class _OfficialRulesReader(pickle.Unpickler):
    """A minimal reader written to the official rules, independent of our persistence.py: version must be 6, the
    module source runs as a fresh module, the class is looked up there, the state set on an uninitialized object."""
    def __init__(self, f):
        super().__init__(f)
        self.modules = {}
    def find_class(self, module, name):
        if (module, name) == ('torch_utils.persistence', '_reconstruct_persistent_obj'):
            return self.reconstruct
        return super().find_class(module, name)
    def reconstruct(self, meta):
        assert meta['version'] == 6 and meta['type'] == 'class'
        if meta['module_src'] not in self.modules:
            module = types.ModuleType(f'_official_rules_{len(self.modules)}')
            # As the official loader does before running the source: the module is findable, and its source known
            # to the persistent_class decorator that the source applies (here ours, in the official code theirs).
            sys.modules[module.__name__] = module
            persistence._module_to_src_dict[module] = meta['module_src']
            exec(compile(meta['module_src'], module.__name__, 'exec'), module.__dict__)
            self.modules[meta['module_src']] = module
        cls = getattr(self.modules[meta['module_src']], meta['class_name'])
        obj = cls.__new__(cls)
        obj.__setstate__(meta['state'])
        return obj

def test_our_snapshot_loads_by_official_rules(tmp_path):
    path = tmp_path / 'snapshot.pkl'
    original = tiny_snapshot(str(path))
    with open(path, 'rb') as f:
        data = _OfficialRulesReader(f).load()
    G = data['G_ema']
    assert type(G).__module__.startswith('_official_rules_')
    z, c = torch.randn([3, 8]), torch.zeros([3, 0])
    assert torch.equal(G(z, c, noise_mode='const'), original['G_ema'](z, c, noise_mode='const'))

def test_legacy_version_4_of_our_snapshots_loads():
    # The demo checkpoint was written while this project wrote version 4; it must keep loading.
    with open('checkpoints/demo-digits32-100kimg.pkl', 'rb') as f:
        data_bytes = f.read()
    assert {meta['version'] for meta in persistent_metas(data_bytes)} == {4}
    G = legacy.load_network_pkl(io.BytesIO(data_bytes))['G_ema']
    assert G.img_resolution == 32
    assert legacy.load_network_pkl(io.BytesIO(official_style_pickle(version=4)[0]))['G_ema'].z_dim == TOY['z_dim']

def test_other_versions_one_line_exit_2(tmp_path, capsys):
    path = tmp_path / 'v5.pkl'
    path.write_bytes(official_style_pickle(version=5)[0])
    with pytest.raises(SystemExit) as exc:
        run_cli(generate.main, args=[f'--network={path}', '--seeds=0', f'--outdir={tmp_path / "out"}'], prog='generate.py')
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and err == f'generate.py: error: {path}: Persistent object in pickle has format version 5, expected 6'
    assert not (tmp_path / 'out').exists()

#----------------------------------------------------------------------------
# Snapshots of the official training loops.

@pytest.mark.parametrize('aug,fork', [('no', 'stylegan2'), ('ada', 'stylegan2'), ('diff', 'stylegan2'), ('no', 'insgen')])
def test_official_training_snapshot_converts_diffusion(monkeypatch, capsys, aug, fork):
    data_bytes, weights, numbers = official_training_snapshot(monkeypatch, aug=aug, fork=fork)
    monkeypatch.undo() # the fork's helper classes exist only while the snapshot is written
    assert not hasattr(importlib.import_module('training.diffusion'), 'Identity')
    data = legacy.load_network_pkl(io.BytesIO(data_bytes))
    assert capsys.readouterr().err == '' # a conversion, not a skip
    diffusion = data['augment_pipe' if fork == 'insgen' else 'diffusion']
    assert type(diffusion) is Diffusion
    assert diffusion.p == numbers['p'] and diffusion.T == numbers['T'] == 10 + round(0.3125 * 990)
    assert np.array_equal(diffusion.t_pool, numbers['t_pool']) and diffusion.aug_type == aug
    assert diffusion.noise_sd == 0.05 and diffusion.ts_dist == 'priority' and (diffusion.t_min, diffusion.t_max) == (10, 1000)
    # The schedule rebuilt for T equals the one the fork stored (linear betas 1e-4 .. 2e-2 over T steps).
    np.testing.assert_allclose(np.sqrt(diffusion.alphas_bar), np.cumprod(np.r_[1.0, 1 - np.linspace(1e-4, 2e-2, numbers['T'])]) ** 0.5, rtol=1e-12)
    if aug == 'ada':
        assert float(diffusion.aug.p) == numbers['p']
    if aug == 'diff':
        assert diffusion.aug.policy == 'color,translation'
    assert data['progress']['cur_p'].item() == numbers['p'] and data['progress']['cur_nimg'].item() == 40000
    z = np.random.RandomState(2).randn(2, TOY['z_dim'])
    c = np.eye(2)[[0, 1]]
    img = data['G_ema'](torch.from_numpy(z), torch.from_numpy(c), truncation_psi=0.7, force_fp32=True)
    np.testing.assert_allclose(img.double().numpy(), toy_reference(weights, z, c, 0.7), rtol=1e-5, atol=1e-5)
    x_t, t = diffusion(torch.zeros([5, 3, 4, 4]))
    assert x_t.shape == (5, 3, 4, 4) and set(t.flatten().tolist()) <= set(numbers['t_pool'].tolist())

def test_official_training_snapshot_through_generate(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    data_bytes, weights, _numbers = official_training_snapshot(monkeypatch, aug='ada', seed=4)
    path = tmp_path / 'network-snapshot-001000.pkl'
    path.write_bytes(data_bytes)
    outdir = tmp_path / 'out'
    run_cli(generate.main, args=[f'--network={path}', '--seeds=1,2', '--class=0', '--trunc=0.8', f'--outdir={outdir}'], prog='generate.py')
    for seed in [1, 2]:
        z = np.random.RandomState(seed).randn(1, TOY['z_dim'])
        reference = toy_reference(weights, z, np.array([[1.0, 0.0]]), 0.8)[0].transpose(1, 2, 0)
        with PIL.Image.open(outdir / f'seed{seed:04d}.png') as image:
            assert np.abs(np.array(image).astype(np.float64) - np.clip(reference * 127.5 + 128, 0, 255)).max() < 1 + 1e-4

def test_unknown_extras_are_skipped_with_one_warning(monkeypatch, capsys):
    # InsGen-like extras: a persistent head whose source imports a module we lack, and a plain class we lack.
    head_src = 'import torch\nfrom torch_utils import persistence\nfrom training.contrastive_head import CLHead\n'
    head = _Persistent(dict(type='class', version=6, module_src=head_src, class_name='DHead', state={}))
    queue = _fork_helper(monkeypatch, 'training', 'ContrastiveQueue', size=4096)
    data_bytes, weights = official_style_pickle(DHead=head, extras=dict(queue=queue))
    monkeypatch.undo()
    data = legacy.load_network_pkl(io.BytesIO(data_bytes), name='insgen.pkl')
    [warning] = capsys.readouterr().err.splitlines()
    assert warning.startswith('Warning: insgen.pkl: skipped DHead (DHead); extras (training.ContrastiveQueue)'), warning
    assert isinstance(data['DHead'], legacy.SkippedObject) and "No module named 'training.contrastive_head'" in data['DHead'].reason
    assert data['extras']['queue'].pickled_state['size'] == 4096
    with pytest.raises(dnnlib.UserError, match='training.ContrastiveQueue was skipped'):
        data['extras']['queue'](torch.zeros(1))
    assert data['G_ema'].z_dim == TOY['z_dim']

def test_missing_class_in_a_network_names_it(monkeypatch, tmp_path):
    data_bytes, _weights = official_style_pickle()
    data = pickle.loads(data_bytes)
    data['G_ema'].extra_layer = _fork_helper(monkeypatch, 'training', 'ModulatedLayer')
    path = tmp_path / 'needs_class.pkl'
    path.write_bytes(pickle.dumps(data))
    monkeypatch.undo()
    message = _error_of(path)
    assert message == f"{path}: G_ema cannot be loaded: class ModulatedLayer of module training is not in this codebase (the module has no ModulatedLayer)"
    assert 'truncated' not in message and 'corrupt' not in message

#----------------------------------------------------------------------------
# Official Diffusion-ProjectedGAN pickles: plain pickles naming pg_modules.* classes, D built on timm.

@pytest.mark.parametrize('name', ['fastgan', 'fastgan_lite_cond'])
def test_official_projected_gan_pickle(name, capsys):
    # tests/data/projected_gan_reference-*.pkl were written by the release's own code (tools/projected_gan_reference.py):
    # their G_ema loads as our FastGAN without timm and gives the release's images; their D is dropped with a warning.
    path = os.path.join(DATA_DIR, f'projected_gan_reference-{name}.pkl')
    data = legacy.open_network(path)
    assert 'timm' not in sys.modules
    assert type(data['G_ema']).__module__ == 'training.networks_fastgan' and data['D'] is None
    assert 'skipped D (timm.models.efficientnet.EfficientNet)' in capsys.readouterr().err
    torch.manual_seed(123)
    img = data['G_ema'](torch.from_numpy(data['z']), torch.from_numpy(data['c']))
    np.testing.assert_allclose(img.detach().numpy(), data['img'], rtol=0, atol=2e-5) # float32 rounding differs between CPU kernels (AVX2, AVX-512) and thread counts

def assert_seed_pngs(outdir, G, seeds, label, **G_kwargs):
    """outdir/seedNNNN.png are G's images of RandomState(seed) latents and this label, pixels as the official tools
    round them (grayscale PNGs for 1 channel)."""
    for seed in seeds:
        z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim)).float()
        img = G(z, label, **G_kwargs).detach()
        expected = (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].numpy()
        with PIL.Image.open(outdir / f'seed{seed:04d}.png') as image:
            np.testing.assert_array_equal(np.array(image), expected[:, :, 0] if expected.shape[2] == 1 else expected)

def test_official_projected_gan_pickle_through_generate(tmp_path, monkeypatch):
    # generate.py with the release's conditional fastgan_lite pickle (no noise injection: deterministic pixels).
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    path = os.path.join(DATA_DIR, 'projected_gan_reference-fastgan_lite_cond.pkl')
    outdir = tmp_path / 'out'
    run_cli(generate.main, args=[f'--network={path}', '--seeds=2,9', '--class=5', f'--outdir={outdir}'], prog='generate.py')
    assert_seed_pngs(outdir, legacy.open_network(path)['G_ema'], [2, 9], torch.eye(10)[[5]])

#----------------------------------------------------------------------------
# Official Diffusion-InsGen snapshots: persistent G, D, G_ema, D_ema and contrastive heads (training.contrastive_head.CLHead),
# the fork's diffusion as augment_pipe.

def test_official_insgen_snapshot(capsys):
    # tests/data/insgen_reference.pkl was written by the release's own code (tools/insgen_reference.py). It loads
    # without that code; G_ema, D and D_ema compute what they computed there; the heads' weights and queues copy
    # into ours by name, which then project D's features as the release's MLPs did.
    # Tolerances: float32 rounding differs between CPU kernels (AVX2, AVX-512) and thread counts.
    data = legacy.open_network(os.path.join(DATA_DIR, 'insgen_reference.pkl'))
    assert capsys.readouterr().err == '' # nothing skipped
    ref = data['reference']
    img = data['G_ema'](torch.from_numpy(ref['z']), torch.zeros([4, 0]), noise_mode='const')
    np.testing.assert_allclose(img.detach().numpy(), ref['img'], rtol=0, atol=2e-5)
    logits, feats = data['D'](torch.from_numpy(ref['x']), torch.zeros([4, 0]), torch.from_numpy(ref['t']), return_feats=True)
    np.testing.assert_allclose(logits.detach().numpy(), ref['logits'], rtol=0, atol=2e-5)
    np.testing.assert_allclose(feats.detach().numpy(), ref['feats'], rtol=0, atol=2e-5)
    assert type(data['D_ema']).__name__ == 'Discriminator' and not torch.equal(data['D_ema'].b4.out.weight, data['D'].b4.out.weight)
    diffusion = data['augment_pipe']
    assert type(diffusion) is Diffusion and diffusion.aug_type == 'ada' and diffusion.p == 0.25 and diffusion.T == 10 + round(0.25 * 490)
    pooled = torch.from_numpy(ref['feats']).mean([2, 3])
    for i, name in enumerate(['DHead', 'GHead']):
        theirs = data[name]
        assert type(theirs).__name__ == 'CLHead' and int(theirs.queue_ptr) == 17 + i
        ours = insgen.ContrastiveHead(in_features=16, queue_size=89)
        misc.copy_params_and_buffers(theirs, ours, require_all=True)
        assert torch.equal(ours.queue, theirs.queue) and int(ours.queue_ptr) == 17 + i
        with torch.no_grad():
            np.testing.assert_allclose(ours.encode(pooled).numpy(), ref['projections'][name], rtol=0, atol=2e-5)
            np.testing.assert_allclose(ours.encode(pooled, momentum=True).numpy(), ref['key_projections'][name], rtol=0, atol=2e-5)

def test_official_insgen_snapshot_through_generate(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    path = os.path.join(DATA_DIR, 'insgen_reference.pkl')
    outdir = tmp_path / 'out'
    run_cli(generate.main, args=[f'--network={path}', '--seeds=3,8', '--noise-mode=const', f'--outdir={outdir}'], prog='generate.py')
    assert_seed_pngs(outdir, legacy.open_network(path)['G_ema'], [3, 8], torch.zeros([1, 0]), noise_mode='const')

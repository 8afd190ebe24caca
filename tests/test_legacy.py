"""Tests of legacy.py: our snapshots, a hand-made official-style pickle (version-4 persistence metas with their
own module source, PyTorch 1.x module state) that loads, runs and goes through generate.py, force_fp16, and one-line
errors naming the file for everything that is not a usable network pickle."""

import collections
import copy
import io
import pickle
import textwrap
import zipfile

import numpy as np
import PIL.Image
import pytest
import torch

import dnnlib
import generate
import legacy
from dnnlib.cli import run_cli
from torch_utils import persistence
from training import networks_stylegan2 as net

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

def official_style_pickle(module_src=_TOY_SRC, seed=0):
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
    meta = lambda class_name, state: _Persistent(dict(type='class', version=4, module_src=module_src, class_name=class_name, state=state))
    data = dict(G=meta('ToyGenerator', G_state), D=meta('ToyDiscriminator', D_state), G_ema=meta('ToyGenerator', copy.deepcopy(G_state)),
        augment_pipe=None, training_set_kwargs=dnnlib.EasyDict(class_name='training.dataset.ImageFolderDataset', path='toy.zip', use_labels=True))
    return pickle.dumps(data, protocol=4), weights

def toy_reference(weights, z, c, psi):
    """The toy generator in float64 numpy, written independently of its module source."""
    x = np.concatenate([z, c], axis=1) @ weights['weight'].double().numpy()
    w_avg = weights['w_avg'].double().numpy()
    x = np.tanh(w_avg + psi * (x - w_avg) + weights['bias'].double().numpy())
    return x.reshape(-1, TOY['img_channels'], TOY['img_resolution'], TOY['img_resolution'])

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

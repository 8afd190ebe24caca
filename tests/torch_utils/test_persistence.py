"""Tests for torch_utils.persistence: the pickle wire format (hand-built version-6 metas, and 4, this project's legacy value), round trips in a fresh
process without the defining module, import hooks, init args, and the early errors."""

import collections
import copy
import io
import json
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import dnnlib
from torch_utils import persistence

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#----------------------------------------------------------------------------

def _meta_pickle(meta):
    """Pickle bytes that unpickle by calling persistence._reconstruct_persistent_obj(meta), as official pickles do."""
    class Carrier:
        def __reduce__(self):
            return (persistence._reconstruct_persistent_obj, (meta,))
    return pickle.dumps(Carrier())

_PLAIN_SRC = textwrap.dedent('''
    SCALE = 10
    class Accumulator:
        def total(self):
            return SCALE * sum(self.values) + self.offset
''')

_MODULE_SRC = textwrap.dedent('''
    import torch
    from torch_utils import persistence, misc

    def _double(x):
        return x * 2

    @persistence.persistent_class
    class Affine(torch.nn.Module):
        def __init__(self, features, bias_init=0.0):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(features))
            self.bias = torch.nn.Parameter(torch.full([features], float(bias_init)))
        def forward(self, x):
            misc.assert_shape(x, [None, self.weight.shape[0]])
            return _double(x * self.weight + self.bias)
''')

def test_hand_built_meta_plain_class():
    meta = dict(type='class', version=6, module_src=_PLAIN_SRC, class_name='Accumulator', state=dict(values=[1, 2, 3], offset=0.5))
    data = _meta_pickle(meta)
    assert b'torch_utils.persistence' in data and b'_reconstruct_persistent_obj' in data
    obj = pickle.loads(data)
    assert obj.total() == 60.5 # 10 * (1 + 2 + 3) + 0.5, from the pickled source.
    assert persistence.is_persistent(obj)
    assert type(obj).__module__.startswith('_imported_module_')
    assert type(obj).__module__ in sys.modules
    assert type(pickle.loads(data)) is type(obj) # The source is executed once and cached.

def test_hand_built_meta_torch_module_uses_setstate():
    torch.manual_seed(0)
    weight, bias = torch.randn(3), torch.randn(3)
    # State in the layout of PyTorch 1.7 (which wrote the official StyleGAN2-ADA pickles), so that
    # nn.Module.__setstate__ must fill in the hook dicts that newer versions expect.
    empty = collections.OrderedDict
    state = dict(training=False, _parameters=empty(weight=torch.nn.Parameter(weight), bias=torch.nn.Parameter(bias)),
        _buffers=empty(), _non_persistent_buffers_set=set(), _backward_hooks=empty(), _forward_hooks=empty(),
        _forward_pre_hooks=empty(), _state_dict_hooks=empty(), _load_state_dict_pre_hooks=empty(), _modules=empty(),
        _init_args=(3,), _init_kwargs=dict(bias_init=0.0))
    meta = dict(type='class', version=6, module_src=_MODULE_SRC, class_name='Affine', state=state)
    net = pickle.loads(_meta_pickle(meta))
    x = torch.randn(4, 3)
    assert torch.allclose(net(x), 2 * (x * weight + bias))
    assert net.init_args == (3,) and net.init_kwargs == dict(bias_init=0.0) and isinstance(net.init_kwargs, dnnlib.EasyDict)
    assert not net.training
    calls = []
    handle = net.register_forward_hook(lambda *args: calls.append(1)) # Needs the hook dicts that __setstate__ created.
    net(x)
    handle.remove()
    assert calls == [1]
    re_loaded = pickle.loads(pickle.dumps(net)) # A rebuilt class pickles again, carrying the same source.
    assert torch.allclose(re_loaded(x), net(x))

def test_meta_version_and_type_are_checked():
    # NVIDIA's loaders accept only 6; we also read 4, which our own snapshots wrote before the fix.
    for version in [4, 6]:
        meta = dict(type='class', version=version, module_src=_PLAIN_SRC, class_name='Accumulator', state=dict(values=[2], offset=0))
        assert pickle.loads(_meta_pickle(meta)).values == [2]
    for bad, message in [(dict(version=3), 'format version 3, expected 6'), (dict(version=5), 'format version 5, expected 6'), (dict(type='function'), 'type "function"')]:
        meta = dict(type='class', version=6, module_src=_PLAIN_SRC, class_name='Accumulator', state=dict(values=[], offset=0))
        meta.update(bad)
        with pytest.raises(dnnlib.UserError, match=message):
            pickle.loads(_meta_pickle(meta))
    meta = dict(type='class', version=6, module_src=_PLAIN_SRC, class_name='Missing', state={})
    with pytest.raises(dnnlib.UserError, match='Missing'):
        pickle.loads(_meta_pickle(meta))

def test_import_hook_can_patch_meta(monkeypatch):
    monkeypatch.setattr(persistence, '_import_hooks', [])
    seen = []
    def hook(meta):
        seen.append(meta.class_name)
        meta.state.offset = meta.state.offset + 100 # Attribute access: hooks get EasyDicts.
        meta.module_src = meta.module_src.replace('SCALE = 10', 'SCALE = 1000')
        return meta
    persistence.import_hook(hook)
    meta = dict(type='class', version=6, module_src=_PLAIN_SRC, class_name='Accumulator', state=dict(values=[1], offset=0))
    assert pickle.loads(_meta_pickle(meta)).total() == 1100
    assert seen == ['Accumulator']
    with pytest.raises(TypeError):
        persistence.import_hook('not callable')

#----------------------------------------------------------------------------

_NET_FILE_SRC = textwrap.dedent('''
    """Throw-away module for the fresh-process persistence test."""
    import numpy as np
    import torch
    from torch_utils import persistence

    OFFSET = 0.25

    @persistence.persistent_class
    class TinyNet(torch.nn.Module):
        def __init__(self, in_features, out_features, slopes=(1.0,), scale=2.0):
            super().__init__()
            self.fc = torch.nn.Linear(in_features, out_features)
            self.register_buffer('shift', torch.zeros(out_features))
            self.slopes = list(slopes)
            self.scale = scale
        def forward(self, x):
            y = self.fc(x) + self.shift + OFFSET
            return torch.nn.functional.leaky_relu(y, self.slopes[0]) * self.scale
''')

_WRITER = textwrap.dedent('''
    import pickle, sys, torch
    import tinynet_for_persistence_test as m
    slopes = [0.2]
    net = m.TinyNet(3, 2, slopes=slopes, scale=1.5)
    slopes.append(99.0) # Mutating the caller's argument must not change the recorded init kwargs.
    with torch.no_grad():
        net.fc.weight.copy_(torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]]))
        net.fc.bias.copy_(torch.tensor([0.1, -0.2]))
        net.shift.copy_(torch.tensor([-5.0, 1.0]))
    with open(sys.argv[1], 'wb') as f:
        pickle.dump(dict(G=net, kwargs=dict(a=1)), f)
''')

_READER = textwrap.dedent('''
    import copy, importlib, json, pickle, sys, torch
    try:
        importlib.import_module('tinynet_for_persistence_test')
        importable = True
    except ModuleNotFoundError:
        importable = False
    with open(sys.argv[1], 'rb') as f:
        data = pickle.load(f)
    net = data['G']
    x = torch.tensor(json.loads(sys.argv[2]), dtype=torch.float32)
    again = pickle.loads(pickle.dumps(net))
    print(json.dumps(dict(
        importable=importable,
        module=type(net).__module__,
        class_name=type(net).__name__,
        init_args=list(net.init_args),
        init_kwargs=net.init_kwargs,
        weight=net.fc.weight.tolist(),
        shift=net.shift.tolist(),
        y=net(x).tolist(),
        y_again=again(x).tolist(),
        y_copy=copy.deepcopy(net)(x).tolist(),
    )))
''')

def _run(args, cwd, pythonpath):
    env = dict(os.environ, PYTHONPATH=pythonpath)
    proc = subprocess.run([sys.executable, '-c', *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout

@pytest.mark.slow('a fresh Python process imports torch and loads a pickle')
def test_round_trip_in_fresh_process_without_defining_module(tmp_path):
    src_dir = tmp_path / 'src'
    src_dir.mkdir()
    (src_dir / 'tinynet_for_persistence_test.py').write_text(_NET_FILE_SRC)
    pkl = tmp_path / 'net.pkl'
    _run([_WRITER, str(pkl)], cwd=str(src_dir), pythonpath=os.pathsep.join([str(src_dir), REPO_ROOT]))
    (src_dir / 'tinynet_for_persistence_test.py').unlink()

    x = [[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]]
    out = json.loads(_run([_READER, str(pkl), json.dumps(x)], cwd=str(tmp_path), pythonpath=REPO_ROOT))
    assert out['importable'] is False
    assert out['module'].startswith('_imported_module_') and out['class_name'] == 'TinyNet'
    assert out['init_args'] == [3, 2] and out['init_kwargs'] == dict(slopes=[0.2], scale=1.5)
    assert out['weight'] == [[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]] and out['shift'] == [-5.0, 1.0]

    # Independent reference: the forward formula in numpy.
    w = np.array(out['weight'])
    y = np.array(x) @ w.T + np.array([0.1, -0.2]) + np.array([-5.0, 1.0]) + 0.25
    ref = np.where(y >= 0, y, 0.2 * y) * 1.5
    for key in ['y', 'y_again', 'y_copy']:
        np.testing.assert_allclose(np.array(out[key]), ref, rtol=1e-6, atol=1e-6)

#----------------------------------------------------------------------------

class _NotPersistent:
    pass

def test_is_persistent_and_errors(tmp_path):
    assert not persistence.is_persistent(_NotPersistent) and not persistence.is_persistent(_NotPersistent())
    assert not persistence.is_persistent([1, 2]) # Unhashable.

    meta = dict(type='class', version=6, module_src=_MODULE_SRC, class_name='Affine', state=None)
    affine_class = type(pickle.loads(_meta_pickle(meta)))
    assert persistence.is_persistent(affine_class)
    assert persistence.persistent_class(affine_class) is affine_class # Decorating twice is a no-op.
    net = affine_class(2, bias_init=1.0)
    assert persistence.is_persistent(net)
    assert torch.equal(net(torch.zeros(1, 2)), torch.full([1, 2], 2.0))

    with pytest.raises(Exception):
        affine_class(2, bias_init=lambda: 0) # Unpicklable init argument: fails at construction, not at snapshot time.
    with pytest.raises(dnnlib.UserError, match='__main__'):
        persistence.persistent_class(type('InMain', (), {'__module__': '__main__'}))
    with pytest.raises(TypeError):
        persistence.persistent_class(lambda: 0)

def test_decorated_class_keeps_identity_and_copies_init_args():
    meta = dict(type='class', version=6, module_src=_MODULE_SRC, class_name='Affine', state=None)
    affine_class = type(pickle.loads(_meta_pickle(meta)))
    assert affine_class.__name__ == 'Affine' and isinstance(affine_class(1), torch.nn.Module)
    kwargs = dict(bias_init=0.5)
    net = affine_class(4, **kwargs)
    kwargs['bias_init'] = 9.0
    assert net.init_kwargs == dict(bias_init=0.5)
    net.init_kwargs['bias_init'] = 7.0 # The property hands out copies.
    assert net.init_kwargs == dict(bias_init=0.5)
    clone = copy.deepcopy(net)
    assert type(clone) is affine_class and torch.equal(clone.bias, net.bias) and clone.bias is not net.bias
    buf = io.BytesIO()
    torch.save(net, buf) # torch.save goes through the same pickle protocol.
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    assert type(loaded) is affine_class and torch.equal(loaded.bias, torch.full([4], 0.5))

#----------------------------------------------------------------------------

"""The safe weights format (training/snapshot.py, legacy.open_network(safe=True), generate.py / calc_metrics.py
--safe): written next to every training snapshot, it reproduces the pickle's networks exactly while executing
nothing stored in the files, and every kind of tampered or broken file is refused with one line naming it."""

import hashlib
import json
import os
import pickle
import shutil

import numpy as np
import PIL.Image
import pytest
import torch

import calc_metrics
import dnnlib
import generate
import legacy
from tests.cli_helpers import run_command
from tests.metrics.helpers import use_fake_detectors
from tests.test_train import tiny_config
from torch_utils import misc
from training import snapshot
from training import training_loop

#----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A real training snapshot (two ticks of the tiny digits run): .pkl, .safetensors and .json."""
    run_dir = tmp_path_factory.mktemp('safe') / '00000-tiny'
    training_loop.training_loop(**tiny_config(run_dir, total_kimg=0.04))
    return run_dir / 'network-snapshot-000000'

def copy_snapshot(base, folder):
    """The three files of a snapshot copied into folder, for tampering; returns the new base path."""
    os.makedirs(folder, exist_ok=True)
    for ext in ['.pkl', '.json', '.safetensors']:
        shutil.copy(str(base) + ext, os.path.join(folder, 'snap' + ext))
    return os.path.join(folder, 'snap')

def read_png(path):
    with PIL.Image.open(path) as image:
        return np.array(image)

#----------------------------------------------------------------------------

@pytest.mark.slow('trainings of several ticks')
def test_snapshot_writes_safe_description(trained):
    with open(str(trained) + '.json') as f:
        desc = json.load(f)
    assert desc['format'] == snapshot.SAFE_FORMAT and desc['version'] == snapshot.SAFE_VERSION
    assert set(desc['networks']) == {'G', 'D', 'G_ema'}
    assert desc['networks']['G_ema']['class_name'] == 'training.networks_stylegan2.Generator'
    assert desc['networks']['D']['class_name'] == 'training.networks_stylegan2.Discriminator'
    assert desc['training_set_kwargs']['class_name'] == 'training.dataset.DigitsDataset' and desc['progress']['cur_tick'] == 1
    with open(str(trained) + '.safetensors', 'rb') as f:
        assert hashlib.sha256(f.read()).hexdigest() == desc['sha256']

def test_safe_loader_reproduces_pickle(trained, monkeypatch):
    reference = legacy.open_network(str(trained) + '.pkl')
    # Nothing may be unpickled on the safe path: any attempt fails the test.
    def refuse(*args, **kwargs):
        raise AssertionError('the safe loader unpickled something')
    for module, name in [(pickle, 'load'), (pickle, 'loads'), (pickle, 'Unpickler'), (torch, 'load')]:
        monkeypatch.setattr(module, name, refuse)
    for name in ['network-snapshot-000000.json', 'network-snapshot-000000.safetensors', 'network-snapshot-000000.pkl']:
        safe = legacy.open_network(os.path.join(os.path.dirname(trained), name), safe=True)
        for key in ['G', 'D', 'G_ema']:
            a, b = dict(misc.named_params_and_buffers(reference[key])), dict(misc.named_params_and_buffers(safe[key]))
            assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), key
    monkeypatch.undo()

    # Images: the official formula through both loaders, and D's logits on them.
    seeds = list(range(8))
    ref_images = np.concatenate([images for _, images in generate.generate_images(reference['G_ema'], seeds, noise_mode='const')])
    safe_images = np.concatenate([images for _, images in generate.generate_images(safe['G_ema'], seeds, noise_mode='const')])
    assert np.array_equal(ref_images, safe_images) and ref_images.std() > 0
    img = torch.from_numpy(ref_images).permute(0, 3, 1, 2).float() / 127.5 - 1
    t = torch.arange(8).reshape(8, 1)
    assert torch.equal(reference['D'](img, torch.zeros([8, 0]), t), safe['D'](img, torch.zeros([8, 0]), t))
    assert safe['training_set_kwargs'] == reference['training_set_kwargs']

def test_pickle_runs_code_safe_path_does_not(trained, tmp_path):
    # The risk in one picture: a "snapshot" pickle that creates a file when loaded.
    base = copy_snapshot(trained, tmp_path)
    marker = tmp_path / 'code-was-executed'
    class Payload:
        def __reduce__(self):
            return (exec, (f'open({str(marker)!r}, "w").close()',))
    with open(base + '.pkl', 'wb') as f:
        pickle.dump(dict(G_ema=Payload()), f)
    safe = legacy.open_network(base + '.pkl', safe=True)
    assert safe['G_ema'].img_resolution == 16 and not marker.exists()
    with pytest.raises(dnnlib.UserError):
        legacy.open_network(base + '.pkl')
    assert marker.exists()

#----------------------------------------------------------------------------

def test_generate_cli_safe_equals_pickle(trained, tmp_path, capsys):
    for mode in ['pickle', 'safe']:
        args = ['--network', str(trained) + '.pkl', '--seeds', '0-3', '--outdir', tmp_path / mode] + (['--safe'] if mode == 'safe' else [])
        code, _out, err = run_command(capsys, generate.main, 'generate.py', *args)
        assert code == 0 and err == []
    for seed in range(4):
        assert np.array_equal(read_png(tmp_path / 'pickle' / f'seed{seed:04d}.png'), read_png(tmp_path / 'safe' / f'seed{seed:04d}.png'))

def test_calc_metrics_cli_safe_equals_pickle(trained, tmp_path, monkeypatch, capsys):
    use_fake_detectors(monkeypatch, tmp_path)
    base = copy_snapshot(trained, tmp_path / 'net')
    for network, extra in [(base + '.pkl', []), (base + '.json', ['--safe'])]:
        code, _out, err = run_command(capsys, calc_metrics.main, 'calc_metrics.py', '--network', network, '--metrics', 'fid50k_full', '--num-gen', '16', *extra)
        assert code == 0 and err == []
    with open(tmp_path / 'net' / 'metric-fid50k_full.jsonl') as f:
        first, second = [json.loads(line) for line in f]
    assert first['results'] == second['results'] and np.isfinite(first['results']['fid50k_full'])

#----------------------------------------------------------------------------
# Tampered and broken files: one line naming the file, exit code 2, no output written.

def edit_json(base, edit):
    with open(base + '.json') as f:
        desc = json.load(f)
    edit(desc)
    with open(base + '.json', 'w') as f:
        json.dump(desc, f)

def set_class(name, class_name):
    return lambda desc: desc['networks'][name].update(class_name=class_name)

@pytest.mark.parametrize('case', ['no json', 'not json', 'foreign json', 'version', 'class', 'kwargs', 'dataset class', 'truncated weights', 'other weights'])
def test_safe_bad_files_one_line(trained, tmp_path, capsys, case):
    base = copy_snapshot(trained, tmp_path / 'net')
    if case == 'no json':
        os.remove(base + '.json')
        expected = 'snap.json: cannot read (No such file or directory); --safe needs the .json and .safetensors'
    elif case == 'not json':
        with open(base + '.json', 'w') as f:
            f.write('{"format": ')
        expected = 'snap.json: not a valid JSON file'
    elif case == 'foreign json':
        with open(base + '.json', 'w') as f:
            json.dump(dict(hello='world'), f)
        expected = 'snap.json: not a network description of this codebase'
    elif case == 'version':
        edit_json(base, lambda desc: desc.update(version=99))
        expected = 'snap.json: format version 99, expected 1'
    elif case == 'class':
        edit_json(base, set_class('G_ema', 'os.system'))
        expected = 'snap.json: G_ema has class "os.system", which is not one of the allowed classes'
    elif case == 'kwargs':
        edit_json(base, lambda desc: desc['networks']['G_ema']['init_kwargs'].update(channel_max=32))
        expected = 'snap.safetensors: the weights of G_ema do not fit training.networks_stylegan2.Generator'
    elif case == 'dataset class':
        edit_json(base, lambda desc: desc['training_set_kwargs'].update(class_name='subprocess.run'))
        expected = 'snap.json: training set class "subprocess.run" is not one of'
    elif case == 'truncated weights':
        data = open(base + '.safetensors', 'rb').read()
        open(base + '.safetensors', 'wb').write(data[:len(data) // 2])
        expected = 'snap.safetensors: sha256 does not match'
    else: # A consistent pair whose weights file is not a safetensors file at all.
        open(base + '.safetensors', 'wb').write(b'\x00' * 64)
        edit_json(base, lambda desc: desc.update(sha256=hashlib.sha256(b'\x00' * 64).hexdigest()))
        expected = 'snap.safetensors: not a valid safetensors file'
    out = tmp_path / 'out'
    code, _out, err = run_command(capsys, generate.main, 'generate.py', '--network', base + '.pkl', '--safe', '--seeds', '0', '--outdir', out)
    assert code == 2 and len(err) == 1 and err[0].startswith('generate.py: error: ') and expected in err[0], err
    assert not out.exists()

#----------------------------------------------------------------------------

def test_safe_classes_come_from_the_presets():
    # Every network class a preset or an overlay (on the stylegan2 preset) names can be loaded safely, and nothing
    # else: a new family adds its presets only.
    from training import presets
    specs = [presets.load_preset(cfg) for cfg in presets.preset_names()]
    specs += [presets.load_preset('stylegan2', overlays=[name]) for name in presets.overlay_names()]
    named = {spec.get('class_name') for preset in specs for spec in preset.networks.values()}
    assert set(snapshot.SAFE_CLASSES) == named
    assert {'training.networks_stylegan3.Generator', 'training.networks_stylegan2.Discriminator', 'training.insgen.ContrastiveHead'} <= named

def test_safe_round_trip_stylegan3(tmp_path):
    # A StyleGAN3 G written in the safe format comes back with the same weights, buffers and images.
    from training import networks_stylegan3
    torch.manual_seed(0)
    kwargs = dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=1, channel_base=256, channel_max=8, conv_kernel=1, use_radial_filters=True)
    G = networks_stylegan3.Generator(**kwargs).eval().requires_grad_(False)
    class_name = 'training.networks_stylegan3.Generator'
    snapshot.save_safe(str(tmp_path / 'snap'), networks=dict(G=(class_name, kwargs, G), G_ema=(class_name, kwargs, G)), info=dict(family='stylegan3'))
    data = snapshot.load_safe(str(tmp_path / 'snap.pkl'))
    assert data.family == 'stylegan3' and data.D is None
    assert list(data.G_ema.state_dict()) == list(G.state_dict())
    for (name, value), loaded in zip(G.state_dict().items(), data.G_ema.state_dict().values()):
        assert torch.equal(value, loaded), name
    z = torch.randn([2, 8])
    assert torch.equal(data.G_ema(z, None), G(z, None))

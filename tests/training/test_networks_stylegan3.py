"""Tests of training/networks_stylegan3.py against independent formulas: the filter design (windowed sinc with a
Kaiser window computed here with numpy; the radial filter's frequency response), the Fourier-feature input and
its affine transform (closed form), the modulated convolution (per-sample conv2d), the layer table (NVIDIA's
published layer names), shapes from 16 to 1024 px, translation equivariance of config T and R."""

import json
import os

import numpy as np
import pytest
import torch

import generate
from training import networks_stylegan3 as net

DATA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'data')

#----------------------------------------------------------------------------

@pytest.mark.parametrize('numtaps,cutoff,width,fs', [(12, 2.0, 2.3, 16), (24, 11.3, 5.1, 64), (6, 8.0, 8.0, 32)])
def test_separable_filter_is_kaiser_windowed_sinc(numtaps, cutoff, width, fs):
    # firwin's design written out: ideal low-pass sinc at the cutoff, Kaiser window whose beta gives the attenuation
    # that a transition band of `width` needs with this many taps (Kaiser's formulas), scaled to unit DC gain.
    n = np.arange(numtaps) - (numtaps - 1) / 2
    atten = 2.285 * (numtaps - 1) * np.pi * (width / (fs / 2)) + 7.95
    beta = 0.1102 * (atten - 8.7) if atten > 50 else 0.5842 * (atten - 21) ** 0.4 + 0.07886 * (atten - 21) if atten >= 21 else 0.0
    h = np.sinc(2 * cutoff / fs * n) * np.kaiser(numtaps, beta)
    h /= h.sum()
    f = net.design_lowpass_filter(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs)
    assert f.dtype == torch.float32 and f.shape == (numtaps,)
    np.testing.assert_allclose(f.numpy(), h, rtol=1e-5, atol=1e-7)

def test_single_tap_means_no_filter():
    assert net.design_lowpass_filter(numtaps=1, cutoff=4, width=2, fs=8) is None

def test_radial_filter_frequency_response():
    # Radially symmetric low-pass: unit DC gain, symmetric under flips and transposition, passes the band well
    # inside the cutoff and stops the band beyond cutoff + width at any angle (the point of config R).
    numtaps, cutoff, width, fs = 24, 4.0, 4.0, 32
    f = net.design_lowpass_filter(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs, radial=True).double().numpy()
    assert f.shape == (numtaps, numtaps)
    assert f.sum() == pytest.approx(1, abs=1e-6)
    np.testing.assert_allclose(f, f.T, atol=1e-7)
    np.testing.assert_allclose(f, f[::-1, ::-1], atol=1e-7)
    n = np.arange(numtaps) - (numtaps - 1) / 2
    def response(freq, angle):
        u, v = freq * np.cos(angle), freq * np.sin(angle)
        return abs(np.sum(f * np.exp(-2j * np.pi * (u * n[None, :] + v * n[:, None]) / fs)))
    for angle in np.linspace(0, np.pi / 2, 7):
        assert response(1.0, angle) == pytest.approx(1, abs=0.02)
        assert response(cutoff + width, angle) < 0.02
        assert response(fs / 2 * 0.95, angle) < 0.02

#----------------------------------------------------------------------------

def test_layer_table_matches_published_networks():
    # Layer names L{i}_{size}_{channels} of NVIDIA's stylegan3-t/r pickles at 1024 and 256 px.
    expected = {
        (1024, 't'): ['L0_36_512', 'L1_36_512', 'L2_52_512', 'L3_52_512', 'L4_84_512', 'L5_148_512', 'L6_148_512', 'L7_276_323', 'L8_276_203',
                      'L9_532_128', 'L10_1044_81', 'L11_1044_51', 'L12_1044_32', 'L13_1024_32', 'L14_1024_3'],
        (1024, 'r'): ['L0_36_1024', 'L1_36_1024', 'L2_52_1024', 'L3_52_1024', 'L4_84_1024', 'L5_148_1024', 'L6_148_1024', 'L7_276_645', 'L8_276_406',
                      'L9_532_256', 'L10_1044_161', 'L11_1044_102', 'L12_1044_64', 'L13_1024_64', 'L14_1024_3'],
        (256, 't'): ['L0_36_512', 'L1_36_512', 'L2_36_512', 'L3_52_512', 'L4_52_512', 'L5_84_512', 'L6_84_512', 'L7_148_512', 'L8_148_512',
                     'L9_148_362', 'L10_276_256', 'L11_276_181', 'L12_276_128', 'L13_256_128', 'L14_256_3'],
    }
    for (res, cfg), names in expected.items():
        scale = 2 if cfg == 'r' else 1
        spec = net.layer_specs(res, channel_base=32768 * scale, channel_max=512 * scale)
        assert [f'L{i}_{int(size)}_{int(ch)}' for i, (size, ch) in enumerate(zip(spec['sizes'], spec['channels']))] == names
        # The progression: geometric cutoffs from 2 to res / 2, reached at the first critically sampled layer.
        np.testing.assert_allclose(spec['cutoffs'][[0, 12, 13, 14]], [2, res / 2, res / 2, res / 2])
        assert np.all(spec['sampling_rates'] >= 2 * np.minimum(spec['cutoffs'], res / 2))

@pytest.mark.parametrize('res', [16, 32, 64, 128, 256, 512, 1024])
@pytest.mark.parametrize('cfg', ['t', 'r'])
def test_generator_construction_and_shapes(res, cfg):
    kwargs = dict(conv_kernel=1, use_radial_filters=True) if cfg == 'r' else dict()
    small = res <= 32
    G = net.Generator(z_dim=8, c_dim=3, w_dim=8, img_resolution=res, img_channels=3, channel_base=512 if small else 32768 // 64,
                      channel_max=16, **kwargs)
    assert G.num_ws == 16 and len(G.synthesis.layer_names) == 15
    assert G.synthesis.layer_names[-1] == f'L14_{res}_3'
    layer = getattr(G.synthesis, G.synthesis.layer_names[0])
    assert layer.weight.shape[2:] == ((1, 1) if cfg == 'r' else (3, 3))
    radial = [getattr(G.synthesis, name).down_radial for name in G.synthesis.layer_names]
    assert radial == [cfg == 'r' and i < 12 and getattr(G.synthesis, name).down_taps > 1 for i, name in enumerate(G.synthesis.layer_names)]
    if small:
        img = G(torch.randn([2, 8]), torch.eye(3)[:2])
        assert img.shape == (2, 3, res, res) and img.dtype == torch.float32 and torch.isfinite(img).all()

#----------------------------------------------------------------------------

def test_fourier_features_closed_form():
    # With the affine at its initial value (rotation 1, translation 0) and the identity transform, channel k of the
    # input is sin(2 pi (<f_k, p> + phi_k)) at the pixel centres p = (i + 0.5 - size / 2) / sampling_rate, before the
    # channel-mixing matrix (set to sqrt(C) I here, so that mixing is the identity).
    torch.manual_seed(0)
    C, size, rate, bandwidth = 6, 12, 8.0, 2.0
    layer = net.SynthesisInput(w_dim=4, channels=C, size=size, sampling_rate=rate, bandwidth=bandwidth)
    assert torch.all(layer.freqs.norm(dim=1) <= bandwidth) and torch.all(layer.phases.abs() <= 0.5)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(C) * np.sqrt(C))
    x = layer(torch.randn([2, 4])).detach().double().numpy()
    p = (np.arange(size) + 0.5 - size / 2) / rate
    f, phi = layer.freqs.double().numpy(), layer.phases.double().numpy()
    expected = np.sin(2 * np.pi * (f[:, 0, None, None] * p[None, None, :] + f[:, 1, None, None] * p[None, :, None] + phi[:, None, None]))
    np.testing.assert_allclose(x[0], expected, atol=1e-5)
    np.testing.assert_allclose(x[1], expected, atol=1e-5)

def test_fourier_features_follow_the_affine_transform():
    # An affine output (r_c, r_s, t_x, t_y) = (a cos q, a sin q, a t_x', a t_y') is normalized by a and maps the
    # sampling grid: features(p) = base(R(q) (p - t')), R(q) the rotation by q (the inverse of rotating the image
    # by -q after translating it by t').
    torch.manual_seed(1)
    C, size, rate, bandwidth = 5, 10, 16.0, 3.0
    layer = net.SynthesisInput(w_dim=4, channels=C, size=size, sampling_rate=rate, bandwidth=bandwidth)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(C) * np.sqrt(C))
        a, q, t = 1.7, 0.4, np.array([0.11, -0.05])
        layer.affine.bias.copy_(torch.tensor([a * np.cos(q), a * np.sin(q), a * t[0], a * t[1]]))
    x = layer(torch.zeros([1, 4])).detach().double().numpy()[0]
    p = (np.arange(size) + 0.5 - size / 2) / rate
    px, py = np.meshgrid(p, p)                                          # [y, x]
    rx, ry = px - t[0], py - t[1]
    ux, uy = np.cos(q) * rx - np.sin(q) * ry, np.sin(q) * rx + np.cos(q) * ry
    f, phi = layer.freqs.double().numpy(), layer.phases.double().numpy()
    expected = np.sin(2 * np.pi * (f[:, 0, None, None] * ux + f[:, 1, None, None] * uy + phi[:, None, None]))
    amplitudes = np.clip(1 - (np.linalg.norm(f, axis=1) - bandwidth) / (rate / 2 - bandwidth), 0, 1)     # 1: in band
    np.testing.assert_allclose(x, expected * amplitudes[:, None, None], atol=1e-5)

def test_user_transform_matches_gen_images_convention():
    # generate.py --translate/--rotate: the matrix of NVIDIA's gen_images.py (rotation by the angle, then the
    # translation), inverted into the input's transform buffer.
    m = generate.make_transform((0.25, -0.5), 90)
    np.testing.assert_allclose(m, [[0, 1, 0.25], [-1, 0, -0.5], [0, 0, 1]], atol=1e-12)

#----------------------------------------------------------------------------

def test_modulated_conv2d_matches_per_sample_convolution():
    torch.manual_seed(0)
    N, I, O, k = 3, 4, 5, 3
    x, w, s = torch.randn([N, I, 7, 7], dtype=torch.float64), torch.randn([O, I, k, k], dtype=torch.float64), torch.randn([N, I], dtype=torch.float64)
    gain = torch.rand([], dtype=torch.float64) + 0.5
    out = net.modulated_conv2d(x=x, w=w, s=s, demodulate=True, padding=1, input_gain=gain)
    for n in range(N):
        wn = w * w.square().mean([1, 2, 3], keepdim=True).rsqrt()
        wn = wn * (s[n] / s.square().mean().sqrt())[None, :, None, None]
        wn = wn / (wn.square().sum([1, 2, 3], keepdim=True) + 1e-8).sqrt()
        ref = torch.nn.functional.conv2d(x[n:n + 1] * gain, wn, padding=1)
        torch.testing.assert_close(out[n:n + 1], ref, rtol=1e-10, atol=1e-10)
    plain = net.modulated_conv2d(x=x, w=w, s=s, demodulate=False, padding=1)
    for n in range(N):
        torch.testing.assert_close(plain[n:n + 1], torch.nn.functional.conv2d(x[n:n + 1], w * s[n][None, :, None, None], padding=1), rtol=1e-10, atol=1e-10)

def test_magnitude_ema_update():
    torch.manual_seed(0)
    G = net.Generator(z_dim=4, c_dim=0, w_dim=4, img_resolution=16, img_channels=1, channel_base=256, channel_max=8, magnitude_ema_beta=0.9)
    layer = getattr(G.synthesis, G.synthesis.layer_names[0])
    with torch.no_grad():
        ws = G.mapping(torch.randn([2, 4]), None)
        x_in = G.synthesis.input(ws[:, 0])
        G.synthesis(ws, update_emas=True)
    expected = 0.1 * x_in.square().mean() + 0.9 * 1.0
    assert float(layer.magnitude_ema) == pytest.approx(float(expected), rel=1e-6)

#----------------------------------------------------------------------------

@pytest.mark.parametrize('cfg', ['t', 'r'])
def test_integer_translation_shifts_the_image(cfg):
    # Translating by k / res (k whole output pixels) moves the image k pixels right; away from the borders the
    # shifted image equals the original (alias-free layers: equivariance to translation). The opposite shift does not.
    torch.manual_seed(0)
    res, k, border = 32, 2, 3
    kwargs = dict(conv_kernel=1, use_radial_filters=True) if cfg == 'r' else dict()
    G = net.Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=res, img_channels=1, channel_base=512, channel_max=16, num_layers=6, **kwargs).eval()
    with torch.no_grad():
        ws = G.mapping(torch.randn([3, 8]), None)
        img = G.synthesis(ws)
        errors = []
        for sign in [1, -1]:
            generate.set_input_transform(G, (sign * k / res, 0), 0, 'test')
            moved = G.synthesis(ws)
            errors.append(float((moved[..., border:-border, k + border:-border] - img[..., border:-border, border:-border - k]).square().mean() / img.square().mean()))
    assert errors[0] < 1e-6 < 0.01 < errors[1]

#----------------------------------------------------------------------------

@pytest.mark.parametrize('cfg', ['t', 'r'])
def test_same_images_as_nvidia_code(cfg):
    # tests/data/stylegan3_reference.npz was written by tools/stylegan3_reference.py with NVIDIA's own StyleGAN3
    # code: its weights in our Generator give its images, plain and under a user transform (--translate, --rotate).
    ref = np.load(os.path.join(DATA_DIR, 'stylegan3_reference.npz'))
    G = net.Generator(**json.loads(str(ref[f'{cfg}/kwargs']))).eval().requires_grad_(False)
    prefix = f'{cfg}/state/'
    state = {key[len(prefix):]: torch.from_numpy(ref[key]) for key in ref.files if key.startswith(prefix)}
    assert set(state) == set(G.state_dict())
    buffers = dict(G.named_buffers())
    for name in [name for name in state if name.endswith(('up_filter', 'down_filter'))]:
        torch.testing.assert_close(buffers[name], state[name], rtol=0, atol=1e-7) # our filter design gives theirs
    G.load_state_dict(state)
    z, c = torch.from_numpy(ref[f'{cfg}/z']), torch.from_numpy(ref[f'{cfg}/c'])
    # rtol as well: float32 rounding differs between CPU kernels (AVX2, AVX-512) and thread counts, and these images
    # reach |x| ~ 19 (config R transformed): 1.1e-5 off at 12 on an AVX-512 machine.
    torch.testing.assert_close(G(z, c, truncation_psi=0.7), torch.from_numpy(ref[f'{cfg}/img']), rtol=1e-5, atol=1e-5)
    generate.set_input_transform(G, (0.3, -0.2), 30, 'test')
    torch.testing.assert_close(G(z, c), torch.from_numpy(ref[f'{cfg}/img_transformed']), rtol=1e-5, atol=1e-5)

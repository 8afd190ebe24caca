"""StyleGAN3 generator ("Alias-Free Generative Adversarial Networks", configs T and R), the StyleGAN3 family of
Diffusion-GAN. Its discriminator is StyleGAN2's timestep-aware D (training/networks_stylegan2.py).

G: z, c -> MappingNetwork (StyleGAN2's, 2 layers, w_avg decay 0.998) -> ws [N, num_layers + 2, w_dim] ->
SynthesisNetwork: Fourier features of a learned rotation/translation (plus a user transform) -> num_layers
modulated convolutions, each followed by a filtered leaky ReLU (upsample, bias, lrelu, low-pass, downsample) ->
a 1x1 toRGB layer -> img [N, img_channels, H, W] in roughly [-1, 1].

The layers' cutoff frequencies f_c and minimum stopbands f_t grow geometrically from the first layer
(f_c = 2, f_t = 2^2.1) to the last non-critical layer (f_c = res / 2, f_t = f_c * 2^0.3); the last num_critical
layers are critically sampled (f_t = f_c = res / 2). Each layer's sampling rate is the smallest power of two
of at least 2 f_t (capped at res), its transition band half-width f_h = max(f_t, s / 2) - f_c, its feature
maps channel_base / 2 / f_c capped at channel_max, its size s + 2 * margin (the last two: res).
Config T: 3x3 convolutions. Config R: 1x1 convolutions, twice the channels, radially symmetric (jinc)
down-sampling filters in the non-critical layers.

Parameter and buffer names follow NVIDIA's release, so that the weights of its pickles copy over with
misc.copy_params_and_buffers.

The layers StyleGAN2 already has (FullyConnectedLayer, MappingNetwork) are imported where they are constructed:
a pickle carries this module's source and must rebuild with dnnlib and torch_utils alone, as NVIDIA's do."""

import numpy as np
import scipy.signal
import scipy.special
import torch

from torch_utils import misc
from torch_utils import persistence
from torch_utils.ops import conv2d_gradfix
from torch_utils.ops import filtered_lrelu

#----------------------------------------------------------------------------

def design_lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float, radial: bool = False):
    """Kaiser-windowed low-pass FIR filter: 1-D (applied separably) from scipy.signal.firwin, or 2-D radially
    symmetric (a jinc windowed by the outer product of two Kaiser windows, normalized to unit sum). None for a
    single tap (no filtering)."""
    assert numtaps >= 1
    if numtaps == 1:
        return None
    if not radial:
        return torch.as_tensor(scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs), dtype=torch.float32)
    x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(x, x))
    f = scipy.special.j1(2 * cutoff * (np.pi * r)) / (np.pi * r)        # jinc of the cutoff; numtaps is even, so r > 0
    beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2)))
    window = np.kaiser(numtaps, beta)
    f *= np.outer(window, window)
    f /= np.sum(f)
    return torch.as_tensor(f, dtype=torch.float32)

#----------------------------------------------------------------------------

def modulated_conv2d(
    x:          torch.Tensor,           # Input [N, I, H, W].
    w:          torch.Tensor,           # Weight [O, I, kh, kw].
    s:          torch.Tensor,           # Styles [N, I].
    demodulate: bool = True,            # Normalize each output channel's modulated weights to unit norm.
    padding:    int = 0,                # Zero padding on each side.
    input_gain: torch.Tensor = None,    # Scale of the input channels: [], [I] or [N, I]; None = 1.
) -> torch.Tensor:
    """StyleGAN3's modulated convolution, one grouped convolution for the whole batch. Weights and styles are
    first scaled to unit mean square (it keeps float16 in range); the input gain is folded into the weights."""
    batch_size = x.shape[0]
    out_channels, in_channels, kh, kw = w.shape
    misc.assert_shape(x, [batch_size, in_channels, None, None])
    misc.assert_shape(s, [batch_size, in_channels])
    if demodulate:
        w = w * w.square().mean([1, 2, 3], keepdim=True).rsqrt()
        s = s * s.square().mean().rsqrt()
    w = w.unsqueeze(0) * s.unsqueeze(1).unsqueeze(3).unsqueeze(4)                 # [N, O, I, kh, kw]
    if demodulate:
        w = w * (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt().unsqueeze(2).unsqueeze(3).unsqueeze(4)
    if input_gain is not None:
        w = w * input_gain.expand(batch_size, in_channels).unsqueeze(1).unsqueeze(3).unsqueeze(4)
    x = x.reshape(1, -1, *x.shape[2:])
    x = conv2d_gradfix.conv2d(input=x, weight=w.reshape(-1, in_channels, kh, kw).to(x.dtype), padding=padding, groups=batch_size)
    return x.reshape(batch_size, -1, *x.shape[2:])

#----------------------------------------------------------------------------

@persistence.persistent_class
class SynthesisInput(torch.nn.Module):
    """Fourier features: sin(2 pi (<f_k, x> + phi_k)) on a grid of size x size pixels at the given sampling rate,
    with frequencies f_k drawn uniformly from the disc of radius `bandwidth`, then mixed by a learned
    [channels, channels] matrix. Per sample, an affine of w gives a rotation (r_c, r_s, normalized) and a
    translation (t_x, t_y) of the grid; `transform` (a buffer, identity by default) is the inverse of a further
    user transform of the output image (generate.py --translate, --rotate). Frequencies that a user transform
    pushes past the band are faded out linearly to zero at half the sampling rate."""
    def __init__(self,
        w_dim,          # Intermediate latent (W) dimensionality.
        channels,       # Number of output channels (Fourier features).
        size,           # Output size in pixels: int or [width, height].
        sampling_rate,  # Output sampling rate, samples per unit length.
        bandwidth,      # Radius of the frequency disc (the first layer's cutoff).
    ):
        super().__init__()
        self.w_dim = w_dim
        self.channels = channels
        self.size = np.broadcast_to(np.asarray(size), [2])
        self.sampling_rate = sampling_rate
        self.bandwidth = bandwidth

        # Uniform on the disc: Gaussian directions with radii r mapped through r * exp(r^2 / 4).
        freqs = torch.randn([channels, 2])
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs /= radii * radii.square().exp().pow(0.25)
        freqs *= bandwidth
        phases = torch.rand([channels]) - 0.5

        from training.networks_stylegan2 import FullyConnectedLayer # pylint: disable=import-outside-toplevel
        self.weight = torch.nn.Parameter(torch.randn([channels, channels]))
        self.affine = FullyConnectedLayer(w_dim, 4, weight_init=0, bias_init=[1, 0, 0, 0])   # starts at (r_c, r_s, t_x, t_y) = (1, 0, 0, 0)
        self.register_buffer('transform', torch.eye(3, 3))
        self.register_buffer('freqs', freqs)
        self.register_buffer('phases', phases)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        batch_size = w.shape[0]

        # The learned similarity transform, normalized to a pure rotation and a translation (both inverse, as
        # applied to the sampling grid): first rotate the image, then translate it, then the user transform.
        t = self.affine(w)
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        eye = torch.eye(3, device=w.device).unsqueeze(0).repeat([batch_size, 1, 1])
        m_r = eye.clone()
        m_r[:, 0, 0] = t[:, 0]
        m_r[:, 0, 1] = -t[:, 1]
        m_r[:, 1, 0] = t[:, 1]
        m_r[:, 1, 1] = t[:, 0]
        m_t = eye.clone()
        m_t[:, 0, 2] = -t[:, 2]
        m_t[:, 1, 2] = -t[:, 3]
        transforms = m_r @ m_t @ self.transform.unsqueeze(0)                       # [N, 3, 3]

        # Transformed frequencies and phases; amplitudes fade out what lies beyond the band.
        freqs = self.freqs.unsqueeze(0)                                             # [1, C, 2]
        phases = self.phases.unsqueeze(0) + (freqs @ transforms[:, :2, 2:]).squeeze(2)
        freqs = freqs @ transforms[:, :2, :2]                                       # [N, C, 2]
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)

        # Pixel centres in units of length: (i + 0.5 - size / 2) / sampling_rate, as affine_grid computes them.
        theta = torch.eye(2, 3, device=w.device)
        theta[0, 0] = 0.5 * self.size[0] / self.sampling_rate
        theta[1, 1] = 0.5 * self.size[1] / self.sampling_rate
        grids = torch.nn.functional.affine_grid(theta.unsqueeze(0), [1, 1, int(self.size[1]), int(self.size[0])], align_corners=False)

        x = (grids.unsqueeze(3) @ freqs.permute(0, 2, 1).unsqueeze(1).unsqueeze(2)).squeeze(3)    # [N, H, W, C]
        x = x + phases.unsqueeze(1).unsqueeze(2)
        x = torch.sin(x * (np.pi * 2))
        x = x * amplitudes.unsqueeze(1).unsqueeze(2)
        x = x @ (self.weight / np.sqrt(self.channels)).t()
        x = x.permute(0, 3, 1, 2)                                                   # [N, C, H, W]
        misc.assert_shape(x, [batch_size, self.channels, int(self.size[1]), int(self.size[0])])
        return x

    def extra_repr(self) -> str:
        return f'w_dim={self.w_dim:d}, channels={self.channels:d}, size={list(self.size)}, sampling_rate={self.sampling_rate:g}, bandwidth={self.bandwidth:g}'

#----------------------------------------------------------------------------

@persistence.persistent_class
class SynthesisLayer(torch.nn.Module):
    """Modulated convolution, then filtered_lrelu: upsample by up_factor to the temporary rate
    max(s_in, s_out) * lrelu_upsampling with a low-pass at the input cutoff, add the bias, leaky ReLU, low-pass at
    the output cutoff and downsample to s_out. The input is divided by the running RMS of what the layer has seen
    (magnitude_ema). The toRGB layer is a 1x1 convolution without demodulation or non-linearity."""
    def __init__(self,
        w_dim,                          # Intermediate latent (W) dimensionality.
        is_torgb,                       # The final 1x1 toRGB layer.
        is_critically_sampled,          # f_t = f_c = s / 2 (the last layers).
        use_fp16,                       # Float16 activations on CUDA.
        in_channels,                    # Input feature maps.
        out_channels,                   # Output feature maps.
        in_size,                        # Input size in pixels: int or [width, height].
        out_size,                       # Output size in pixels: int or [width, height].
        in_sampling_rate,               # Input sampling rate s.
        out_sampling_rate,              # Output sampling rate s.
        in_cutoff,                      # Input cutoff frequency f_c.
        out_cutoff,                     # Output cutoff frequency f_c.
        in_half_width,                  # Input transition band half-width f_h.
        out_half_width,                 # Output transition band half-width f_h.
        conv_kernel         = 3,        # Convolution kernel size (config T: 3, config R: 1); toRGB: always 1.
        filter_size         = 6,        # Filter taps per sample of the lower rate when resampling.
        lrelu_upsampling    = 2,        # Oversampling of the leaky ReLU relative to max(s_in, s_out).
        use_radial_filters  = False,    # Radially symmetric down-sampling filter (config R), non-critical layers only.
        conv_clamp          = 256,      # Clamp activations to [-conv_clamp, conv_clamp], None = off.
        magnitude_ema_beta  = 0.999,    # Decay of the running mean square of the input.
    ):
        super().__init__()
        self.w_dim = w_dim
        self.is_torgb = is_torgb
        self.is_critically_sampled = is_critically_sampled
        self.use_fp16 = use_fp16
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.in_size = np.broadcast_to(np.asarray(in_size), [2])
        self.out_size = np.broadcast_to(np.asarray(out_size), [2])
        self.in_sampling_rate = in_sampling_rate
        self.out_sampling_rate = out_sampling_rate
        self.tmp_sampling_rate = max(in_sampling_rate, out_sampling_rate) * (1 if is_torgb else lrelu_upsampling)
        self.in_cutoff = in_cutoff
        self.out_cutoff = out_cutoff
        self.in_half_width = in_half_width
        self.out_half_width = out_half_width
        self.conv_kernel = 1 if is_torgb else conv_kernel
        self.conv_clamp = conv_clamp
        self.magnitude_ema_beta = magnitude_ema_beta

        from training.networks_stylegan2 import FullyConnectedLayer # pylint: disable=import-outside-toplevel
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, self.conv_kernel, self.conv_kernel]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.register_buffer('magnitude_ema', torch.ones([]))

        # Resampling filters: filter_size taps per low-rate sample, none where the rate does not change.
        self.up_factor = int(np.rint(self.tmp_sampling_rate / in_sampling_rate))
        assert in_sampling_rate * self.up_factor == self.tmp_sampling_rate
        self.up_taps = filter_size * self.up_factor if self.up_factor > 1 and not is_torgb else 1
        self.register_buffer('up_filter', design_lowpass_filter(numtaps=self.up_taps, cutoff=in_cutoff, width=in_half_width * 2, fs=self.tmp_sampling_rate))
        self.down_factor = int(np.rint(self.tmp_sampling_rate / out_sampling_rate))
        assert out_sampling_rate * self.down_factor == self.tmp_sampling_rate
        self.down_taps = filter_size * self.down_factor if self.down_factor > 1 and not is_torgb else 1
        self.down_radial = use_radial_filters and not is_critically_sampled
        self.register_buffer('down_filter', design_lowpass_filter(numtaps=self.down_taps, cutoff=out_cutoff, width=out_half_width * 2, fs=self.tmp_sampling_rate, radial=self.down_radial))

        # Padding that maps the input grid onto the output grid, sample centres aligned (the paper's Appendix C.3).
        pad_total = (self.out_size - 1) * self.down_factor + 1                      # size before downsampling
        pad_total -= (self.in_size + self.conv_kernel - 1) * self.up_factor         # size after the conv and upsampling
        pad_total += self.up_taps + self.down_taps - 2                              # lost to the two filters
        pad_lo = (pad_total + self.up_factor) // 2
        pad_hi = pad_total - pad_lo
        self.padding = [int(pad_lo[0]), int(pad_hi[0]), int(pad_lo[1]), int(pad_hi[1])]

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = 'random', force_fp32: bool = False, update_emas: bool = False) -> torch.Tensor:
        assert noise_mode in ['random', 'const', 'none'] # StyleGAN3 has no noise inputs; accepted for a common interface
        misc.assert_shape(x, [None, self.in_channels, int(self.in_size[1]), int(self.in_size[0])])
        misc.assert_shape(w, [x.shape[0], self.w_dim])
        if update_emas:
            with torch.autograd.profiler.record_function('update_magnitude_ema'):
                magnitude_cur = x.detach().to(torch.float32).square().mean()
                self.magnitude_ema.copy_(magnitude_cur.lerp(self.magnitude_ema, self.magnitude_ema_beta))
        input_gain = self.magnitude_ema.rsqrt()

        styles = self.affine(w)
        if self.is_torgb:
            styles = styles * (1 / np.sqrt(self.in_channels * (self.conv_kernel ** 2)))
        dtype = torch.float16 if (self.use_fp16 and not force_fp32 and x.device.type == 'cuda') else torch.float32
        x = modulated_conv2d(x=x.to(dtype), w=self.weight, s=styles, padding=self.conv_kernel - 1, demodulate=not self.is_torgb, input_gain=input_gain)

        gain = 1 if self.is_torgb else np.sqrt(2)
        slope = 1 if self.is_torgb else 0.2
        x = filtered_lrelu.filtered_lrelu(x=x, fu=self.up_filter, fd=self.down_filter, b=self.bias.to(x.dtype), up=self.up_factor, down=self.down_factor,
                                          padding=self.padding, gain=gain, slope=slope, clamp=self.conv_clamp)
        misc.assert_shape(x, [None, self.out_channels, int(self.out_size[1]), int(self.out_size[0])])
        assert x.dtype == dtype
        return x

    def extra_repr(self) -> str:
        return (f'w_dim={self.w_dim:d}, is_torgb={self.is_torgb}, is_critically_sampled={self.is_critically_sampled}, use_fp16={self.use_fp16}, '
                f'in_sampling_rate={self.in_sampling_rate:g}, out_sampling_rate={self.out_sampling_rate:g}, in_cutoff={self.in_cutoff:g}, '
                f'out_cutoff={self.out_cutoff:g}, in_half_width={self.in_half_width:g}, out_half_width={self.out_half_width:g}, '
                f'in_size={list(self.in_size)}, out_size={list(self.out_size)}, in_channels={self.in_channels:d}, out_channels={self.out_channels:d}')

#----------------------------------------------------------------------------

def layer_specs(img_resolution: int, num_layers: int = 14, num_critical: int = 2, first_cutoff: float = 2, first_stopband: float = 2 ** 2.1,
                last_stopband_rel: float = 2 ** 0.3, margin_size: int = 10, channel_base: int = 32768, channel_max: int = 512, img_channels: int = 3) -> dict:
    """Per layer i = 0..num_layers (the last is toRGB): cutoff f_c, minimum stopband f_t, sampling rate s,
    transition half-width f_h, size and channels, from the geometric progression described in the module doc."""
    last_cutoff = img_resolution / 2
    last_stopband = last_cutoff * last_stopband_rel
    exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
    cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
    stopbands = first_stopband * (last_stopband / first_stopband) ** exponents
    sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
    half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs
    sizes = sampling_rates + margin_size * 2
    sizes[-2:] = img_resolution
    channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
    channels[-1] = img_channels
    return dict(cutoffs=cutoffs, stopbands=stopbands, sampling_rates=sampling_rates, half_widths=half_widths, sizes=sizes, channels=channels)

@persistence.persistent_class
class SynthesisNetwork(torch.nn.Module):
    """Fourier-feature input, num_layers synthesis layers and toRGB; ws[0] drives the input, ws[i + 1] layer i."""
    def __init__(self,
        w_dim,                          # Intermediate latent (W) dimensionality.
        img_resolution,                 # Output resolution.
        img_channels,                   # Number of color channels.
        channel_base        = 32768,    # Feature maps of a layer: channel_base / 2 / f_c, capped at channel_max.
        channel_max         = 512,      # Cap on feature maps per layer.
        num_layers          = 14,       # Synthesis layers, not counting the input and toRGB.
        num_critical        = 2,        # Critically sampled layers at the end.
        first_cutoff        = 2,        # f_c of the first layer.
        first_stopband      = 2**2.1,   # f_t of the first layer.
        last_stopband_rel   = 2**0.3,   # f_t of the last non-critical layer relative to its f_c.
        margin_size         = 10,       # Extra pixels on each side of the intermediate feature maps.
        output_scale        = 0.25,     # Scale of the output image.
        num_fp16_res        = 4,        # Float16 in the layers whose sampling rate exceeds res / 2^num_fp16_res.
        **layer_kwargs,                 # SynthesisLayer kwargs (conv_kernel, use_radial_filters, conv_clamp, magnitude_ema_beta, ...).
    ):
        super().__init__()
        self.w_dim = w_dim
        self.num_ws = num_layers + 2
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.num_layers = num_layers
        self.num_critical = num_critical
        self.margin_size = margin_size
        self.output_scale = output_scale
        self.num_fp16_res = num_fp16_res

        spec = layer_specs(img_resolution, num_layers=num_layers, num_critical=num_critical, first_cutoff=first_cutoff, first_stopband=first_stopband,
                           last_stopband_rel=last_stopband_rel, margin_size=margin_size, channel_base=channel_base, channel_max=channel_max, img_channels=img_channels)
        cutoffs, rates, half_widths, sizes, channels = spec['cutoffs'], spec['sampling_rates'], spec['half_widths'], spec['sizes'], spec['channels']
        self.input = SynthesisInput(w_dim=w_dim, channels=int(channels[0]), size=int(sizes[0]), sampling_rate=rates[0], bandwidth=cutoffs[0])
        self.layer_names = []
        for idx in range(num_layers + 1):
            prev = max(idx - 1, 0)
            layer = SynthesisLayer(w_dim=w_dim, is_torgb=(idx == num_layers), is_critically_sampled=(idx >= num_layers - num_critical),
                use_fp16=bool(rates[idx] * (2 ** num_fp16_res) > img_resolution),
                in_channels=int(channels[prev]), out_channels=int(channels[idx]), in_size=int(sizes[prev]), out_size=int(sizes[idx]),
                in_sampling_rate=int(rates[prev]), out_sampling_rate=int(rates[idx]), in_cutoff=cutoffs[prev], out_cutoff=cutoffs[idx],
                in_half_width=half_widths[prev], out_half_width=half_widths[idx], **layer_kwargs)
            name = f'L{idx}_{layer.out_size[0]}_{layer.out_channels}'
            setattr(self, name, layer)
            self.layer_names.append(name)

    def forward(self, ws: torch.Tensor, **layer_kwargs) -> torch.Tensor:
        misc.assert_shape(ws, [None, self.num_ws, self.w_dim])
        ws = ws.to(torch.float32).unbind(dim=1)
        x = self.input(ws[0])
        for name, w in zip(self.layer_names, ws[1:]):
            x = getattr(self, name)(x, w, **layer_kwargs)
        if self.output_scale != 1:
            x = x * self.output_scale
        misc.assert_shape(x, [None, self.img_channels, self.img_resolution, self.img_resolution])
        return x.to(torch.float32)

    def extra_repr(self) -> str:
        return (f'w_dim={self.w_dim:d}, num_ws={self.num_ws:d}, img_resolution={self.img_resolution:d}, img_channels={self.img_channels:d}, '
                f'num_layers={self.num_layers:d}, num_critical={self.num_critical:d}, margin_size={self.margin_size:d}, num_fp16_res={self.num_fp16_res:d}')

#----------------------------------------------------------------------------

@persistence.persistent_class
class Generator(torch.nn.Module):
    """StyleGAN3 G: mapping (2 layers, w_avg decay 0.998 unless mapping_kwargs say otherwise) and synthesis."""
    def __init__(self,
        z_dim,                      # Input latent (Z) dimensionality.
        c_dim,                      # Conditioning label (C) dimensionality, 0 = no labels.
        w_dim,                      # Intermediate latent (W) dimensionality.
        img_resolution,             # Output resolution.
        img_channels,               # Number of output color channels.
        mapping_kwargs      = {},   # MappingNetwork kwargs.
        **synthesis_kwargs,         # SynthesisNetwork kwargs.
    ):
        from training.networks_stylegan2 import MappingNetwork # pylint: disable=import-outside-toplevel
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.synthesis = SynthesisNetwork(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels, **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **dict(dict(num_layers=2, w_avg_beta=0.998), **mapping_kwargs))

    def forward(self, z: torch.Tensor, c: torch.Tensor, truncation_psi: float = 1, truncation_cutoff: int = None, update_emas: bool = False, **synthesis_kwargs) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, update_emas=update_emas)
        return self.synthesis(ws, update_emas=update_emas, **synthesis_kwargs)

#----------------------------------------------------------------------------

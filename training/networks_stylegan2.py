"""StyleGAN2 generator and timestep-aware discriminator (config F of "Analyzing and Improving the Image
Quality of StyleGAN", as trained by StyleGAN2-ADA), the StyleGAN2 family of Diffusion-GAN.

G: z, c -> MappingNetwork -> ws [N, num_ws, w_dim] -> SynthesisNetwork (modulated convolutions, one block per
resolution from 4x4 up) -> img [N, img_channels, H, W] in roughly [-1, 1].
D: img -> DiscriminatorBlock per resolution down to 4x4 -> DiscriminatorEpilogue (minibatch stddev, conv, fc),
projected onto cmap = MappingNetwork([c, t]). The diffusion step t of each image enters D only through cmap,
so D is timestep-aware for conditional and unconditional data alike.

Every layer uses the equalized learning rate (weights drawn from N(0, 1), scaled at run time by
1/sqrt(fan_in)). The num_fp16_res highest resolutions run in float16 on CUDA; on CPU in float32, or in
bfloat16 with cpu_bf16 (train.py --bf16). The CPU fast path (cpu_channels_last, demod_matmul, fused_modconv
'auto') computes the same numbers up to float rounding; the classes' defaults are the official computation, the
presets turn the fast path on. Parameter and buffer names follow the official StyleGAN2-ADA networks, so that
their state dicts copy over with misc.copy_params_and_buffers."""

import numpy as np
import torch

from torch_utils import misc
from torch_utils import persistence
from torch_utils.ops import bias_act
from torch_utils.ops import conv2d_resample
from torch_utils.ops import fma
from torch_utils.ops import upfirdn2d

#----------------------------------------------------------------------------

@misc.profiled_function
def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Scale x so that the mean of its squares along dim is 1."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()

#----------------------------------------------------------------------------

@misc.profiled_function
def modulated_conv2d(
    x,                          # Input activations: [batch_size, in_channels, in_height, in_width].
    weight,                     # Shared convolution weights: [out_channels, in_channels, kernel_height, kernel_width].
    styles,                     # Per-sample input channel scales: [batch_size, in_channels].
    noise           = None,     # Optional noise added to the output, broadcastable to [batch_size, out_channels, out_height, out_width].
    up              = 1,        # Integer upsampling factor.
    down            = 1,        # Integer downsampling factor.
    padding         = 0,        # Padding of the upsampled image.
    resample_filter = None,     # Low-pass filter from upfirdn2d.setup_filter(), None = box.
    demodulate      = True,     # Normalize each output channel of the modulated weights to unit L2 norm?
    flip_weight     = True,     # False = true convolution; True = correlation (what F.conv2d computes).
    fused_modconv   = True,     # One grouped convolution with per-sample weights (True) or scale activations around a shared convolution (False)?
    demod_matmul    = False,    # Unfused: demodulation coefficients by one matmul of the squared styles and weights (False: from the per-sample weights, as the official code)?
) -> torch.Tensor:
    """Convolution whose weights are scaled per sample and input channel by styles, then optionally
    normalized per output channel (demodulation)."""
    batch_size = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape
    misc.assert_shape(weight, [out_channels, in_channels, kh, kw])
    misc.assert_shape(x, [batch_size, in_channels, None, None])
    misc.assert_shape(styles, [batch_size, in_channels])

    # In float16 the products below overflow for large weights or styles. Demodulation cancels any
    # uniform scale of weight and styles, so bring both to a safe range first.
    if x.dtype == torch.float16 and demodulate:
        weight = weight * (1 / np.sqrt(in_channels * kh * kw) / weight.norm(float('inf'), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float('inf'), dim=1, keepdim=True)

    # Per-sample weights and demodulation coefficients. Unfused, with demod_matmul, the per-sample weights are
    # never made: the squared norm of weight[o] * styles[n] is sum_i styles[n, i]^2 * |weight[o, i]|^2, one small
    # matmul instead of an [N, O, I, k, k] tensor in the forward and backward passes (the same sum in another
    # order; on a CPU most of a training step's time went there).
    w = None
    dcoefs = None
    if fused_modconv or (demodulate and not demod_matmul):
        w = weight.unsqueeze(0) * styles.reshape(batch_size, 1, -1, 1, 1) # [NOIkk]
    if demodulate and w is not None:
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt() # [NO]
    elif demodulate:
        dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt() # [NO]
    if demodulate and fused_modconv:
        w = w * dcoefs.reshape(batch_size, -1, 1, 1, 1) # [NOIkk]

    # Non-fused: modulation and demodulation are linear, so they commute with the shared convolution and
    # become scalings of the input and output activations.
    if not fused_modconv:
        x = x * styles.to(x.dtype).reshape(batch_size, -1, 1, 1)
        x = conv2d_resample.conv2d_resample(x=x, w=weight.to(x.dtype), f=resample_filter, up=up, down=down, padding=padding, flip_weight=flip_weight)
        if demodulate and noise is not None:
            x = fma.fma(x, dcoefs.to(x.dtype).reshape(batch_size, -1, 1, 1), noise.to(x.dtype))
        elif demodulate:
            x = x * dcoefs.to(x.dtype).reshape(batch_size, -1, 1, 1)
        elif noise is not None:
            x = x.add_(noise.to(x.dtype))
        return x

    # Fused: fold the batch into the channel axis and run one grouped convolution, one group per sample.
    with misc.suppress_tracer_warnings(): # the batch size becomes a constant under tracing
        batch_size = int(batch_size)
    misc.assert_shape(x, [batch_size, in_channels, None, None])
    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_channels, kh, kw)
    x = conv2d_resample.conv2d_resample(x=x, w=w.to(x.dtype), f=resample_filter, up=up, down=down, padding=padding, groups=batch_size, flip_weight=flip_weight)
    x = x.reshape(batch_size, -1, *x.shape[2:])
    if noise is not None:
        x = x.add_(noise.to(x.dtype))
    return x

#----------------------------------------------------------------------------

@persistence.persistent_class
class FullyConnectedLayer(torch.nn.Module):
    """Dense layer with equalized learning rate and a fused bias + activation."""
    def __init__(self,
        in_features,                # Number of input features.
        out_features,               # Number of output features.
        bias            = True,     # Apply an additive bias before the activation?
        activation      = 'linear', # Activation name from bias_act.activation_funcs ('linear', 'lrelu', ...).
        lr_multiplier   = 1,        # Learning rate multiplier of weight and bias.
        weight_init     = 1,        # Initial standard deviation of the effective weights (0: the layer starts as its bias).
        bias_init       = 0,        # Initial value of the bias: a scalar or one value per output feature.
    ):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        # Stored weights are divided by lr_multiplier and rescaled at run time: Adam then moves the
        # effective weights lr_multiplier times slower.
        self.weight = torch.nn.Parameter(torch.randn([out_features, in_features]) * weight_init / lr_multiplier)
        bias_init = np.broadcast_to(np.asarray(bias_init, dtype=np.float32), [out_features])
        self.bias = torch.nn.Parameter(torch.from_numpy(bias_init.copy())) if bias else None
        self.weight_gain = lr_multiplier / np.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain

        if self.activation == 'linear' and b is not None:
            x = torch.addmm(b.unsqueeze(0), x, w.t())
        else:
            x = x.matmul(w.t())
            x = bias_act.bias_act(x, b, act=self.activation)
        return x

    def extra_repr(self) -> str:
        return f'in_features={self.in_features:d}, out_features={self.out_features:d}, activation={self.activation:s}'

#----------------------------------------------------------------------------

@persistence.persistent_class
class Conv2dLayer(torch.nn.Module):
    """Convolution with equalized learning rate, optional filtered up/downsampling, bias, activation and clamp."""
    def __init__(self,
        in_channels,                    # Number of input channels.
        out_channels,                   # Number of output channels.
        kernel_size,                    # Width and height of the convolution kernel.
        bias            = True,         # Apply an additive bias before the activation?
        activation      = 'linear',     # Activation name from bias_act.activation_funcs.
        up              = 1,            # Integer upsampling factor.
        down            = 1,            # Integer downsampling factor.
        resample_filter = [1,3,3,1],    # 1D low-pass filter taps used for up/downsampling.
        conv_clamp      = None,         # Clamp the output to +-conv_clamp, None = no clamp.
        channels_last   = False,        # Store the weight in channels_last memory format?
        trainable       = True,         # False = weight and bias are frozen buffers.
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.activation = activation
        self.up = up
        self.down = down
        self.conv_clamp = conv_clamp
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / np.sqrt(in_channels * (kernel_size ** 2))
        self.act_gain = bias_act.activation_funcs[activation].def_gain

        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format)
        bias = torch.zeros([out_channels]) if bias else None
        if trainable:
            self.weight = torch.nn.Parameter(weight)
            self.bias = torch.nn.Parameter(bias) if bias is not None else None
        else:
            self.register_buffer('weight', weight)
            if bias is not None:
                self.register_buffer('bias', bias)
            else:
                self.bias = None

    def forward(self, x: torch.Tensor, gain: float = 1) -> torch.Tensor:
        w = self.weight * self.weight_gain
        b = self.bias.to(x.dtype) if self.bias is not None else None
        flip_weight = (self.up == 1) # with up > 1 conv2d_resample runs a transposed convolution, which flips by itself
        x = conv2d_resample.conv2d_resample(x=x, w=w.to(x.dtype), f=self.resample_filter, up=self.up, down=self.down, padding=self.padding, flip_weight=flip_weight)

        act_gain = self.act_gain * gain
        act_clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        x = bias_act.bias_act(x, b, act=self.activation, gain=act_gain, clamp=act_clamp)
        return x

    def extra_repr(self) -> str:
        return ' '.join([
            f'in_channels={self.in_channels:d}, out_channels={self.out_channels:d}, activation={self.activation:s},',
            f'up={self.up}, down={self.down}'])

#----------------------------------------------------------------------------

@persistence.persistent_class
class MappingNetwork(torch.nn.Module):
    """MLP from latent z and label c to the intermediate latent w, broadcast to num_ws copies, with a running
    average of w for the truncation trick."""
    def __init__(self,
        z_dim,                      # Input latent (Z) dimensionality, 0 = no latent.
        c_dim,                      # Conditioning label (C) dimensionality, 0 = no label.
        w_dim,                      # Intermediate latent (W) dimensionality.
        num_ws,                     # Number of copies of w to output, None = return [N, w_dim] instead of [N, num_ws, w_dim].
        num_layers      = 8,        # Number of fully connected layers.
        embed_features  = None,     # Width of the label embedding, None = w_dim.
        layer_features  = None,     # Width of the hidden layers, None = w_dim.
        activation      = 'lrelu',  # Activation of the hidden layers.
        lr_multiplier   = 0.01,     # Learning rate multiplier of the mapping layers.
        w_avg_beta      = 0.995,    # Decay of the running average of w (StyleGAN2-ADA, Diffusion-GAN), None = no running average.
    ):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta

        if embed_features is None:
            embed_features = w_dim
        if c_dim == 0:
            embed_features = 0
        if layer_features is None:
            layer_features = w_dim
        features_list = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]

        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            layer = FullyConnectedLayer(features_list[idx], features_list[idx + 1], activation=activation, lr_multiplier=lr_multiplier)
            setattr(self, f'fc{idx}', layer)
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer('w_avg', torch.zeros([w_dim]))

    def forward(self, z: torch.Tensor, c: torch.Tensor, truncation_psi: float = 1, truncation_cutoff: int = None, update_emas: bool = False) -> torch.Tensor:
        # Inputs: z and the embedded c are each normalized to unit second moment, then concatenated.
        x = None
        with torch.autograd.profiler.record_function('input'):
            if self.z_dim > 0:
                misc.assert_shape(z, [None, self.z_dim])
                x = normalize_2nd_moment(z.to(torch.float32))
            if self.c_dim > 0:
                misc.assert_shape(c, [None, self.c_dim])
                y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
                x = torch.cat([x, y], dim=1) if x is not None else y

        for idx in range(self.num_layers):
            x = getattr(self, f'fc{idx}')(x)

        if update_emas and self.num_ws is not None and self.w_avg_beta is not None:
            with torch.autograd.profiler.record_function('update_w_avg'):
                self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))

        if self.num_ws is not None:
            with torch.autograd.profiler.record_function('broadcast'):
                x = x.unsqueeze(1).repeat([1, self.num_ws, 1])

        # Truncation trick: pull w towards its running average; with a cutoff only the first (coarse) ws.
        if truncation_psi != 1:
            with torch.autograd.profiler.record_function('truncate'):
                assert self.num_ws is not None and self.w_avg_beta is not None, 'truncation needs the running average of w'
                if truncation_cutoff is None:
                    x = self.w_avg.lerp(x, truncation_psi)
                else:
                    x[:, :truncation_cutoff] = self.w_avg.lerp(x[:, :truncation_cutoff], truncation_psi)
        return x

    def extra_repr(self) -> str:
        return f'z_dim={self.z_dim:d}, c_dim={self.c_dim:d}, w_dim={self.w_dim:d}, num_ws={self.num_ws}'

#----------------------------------------------------------------------------

@persistence.persistent_class
class SynthesisLayer(torch.nn.Module):
    """Modulated 3x3 convolution (optionally upsampling 2x), per-pixel noise, bias and activation."""
    def __init__(self,
        in_channels,                    # Number of input channels.
        out_channels,                   # Number of output channels.
        w_dim,                          # Intermediate latent (W) dimensionality.
        resolution,                     # Output resolution in pixels.
        kernel_size     = 3,            # Convolution kernel size.
        up              = 1,            # Integer upsampling factor.
        use_noise       = True,         # Add per-pixel noise scaled by a learned strength?
        activation      = 'lrelu',      # Activation name from bias_act.activation_funcs.
        resample_filter = [1,3,3,1],    # 1D low-pass filter taps used for upsampling.
        conv_clamp      = None,         # Clamp the output to +-conv_clamp, None = no clamp.
        channels_last   = False,        # Store the weight in channels_last memory format?
        demod_matmul    = False,        # Unfused demodulation by a matmul (modulated_conv2d)?
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.demod_matmul = demod_matmul
        self.up = up
        self.use_noise = use_noise
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.act_gain = bias_act.activation_funcs[activation].def_gain

        # Styles start at 1 (bias_init=1) so that the initial modulation is close to the identity.
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format))
        if use_noise:
            self.register_buffer('noise_const', torch.randn([resolution, resolution]))
            self.noise_strength = torch.nn.Parameter(torch.zeros([]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = 'random', fused_modconv: bool = True, gain: float = 1) -> torch.Tensor:
        assert noise_mode in ['random', 'const', 'none']
        in_resolution = self.resolution // self.up
        misc.assert_shape(x, [None, self.in_channels, in_resolution, in_resolution])
        styles = self.affine(w)

        noise = None
        if self.use_noise and noise_mode == 'random':
            noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device) * self.noise_strength
        if self.use_noise and noise_mode == 'const':
            noise = self.noise_const * self.noise_strength

        flip_weight = (self.up == 1) # with up > 1 conv2d_resample runs a transposed convolution, which flips by itself
        x = modulated_conv2d(x=x, weight=self.weight, styles=styles, noise=noise, up=self.up,
            padding=self.padding, resample_filter=self.resample_filter, flip_weight=flip_weight, fused_modconv=fused_modconv, demod_matmul=self.demod_matmul)

        act_gain = self.act_gain * gain
        act_clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        x = bias_act.bias_act(x, self.bias.to(x.dtype), act=self.activation, gain=act_gain, clamp=act_clamp)
        return x

    def extra_repr(self) -> str:
        return ' '.join([
            f'in_channels={self.in_channels:d}, out_channels={self.out_channels:d}, w_dim={self.w_dim:d},',
            f'resolution={self.resolution:d}, up={self.up}, activation={self.activation:s}'])

#----------------------------------------------------------------------------

@persistence.persistent_class
class ToRGBLayer(torch.nn.Module):
    """Modulated 1x1 convolution to image channels, without demodulation."""
    def __init__(self,
        in_channels,                # Number of input channels.
        out_channels,               # Number of image channels.
        w_dim,                      # Intermediate latent (W) dimensionality.
        kernel_size     = 1,        # Convolution kernel size.
        conv_clamp      = None,     # Clamp the output to +-conv_clamp, None = no clamp.
        channels_last   = False,    # Store the weight in channels_last memory format?
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.w_dim = w_dim
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / np.sqrt(in_channels * (kernel_size ** 2))

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused_modconv: bool = True) -> torch.Tensor:
        # Without demodulation the equalized-lr gain has to be applied explicitly; it goes into the styles.
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x=x, weight=self.weight, styles=styles, demodulate=False, fused_modconv=fused_modconv)
        x = bias_act.bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp)
        return x

    def extra_repr(self) -> str:
        return f'in_channels={self.in_channels:d}, out_channels={self.out_channels:d}, w_dim={self.w_dim:d}'

#----------------------------------------------------------------------------

def block_precision(device: torch.device, use_fp16: bool, channels_last: bool, force_fp32: bool, cpu_bf16: bool, cpu_channels_last: bool) -> tuple:
    """(dtype, memory_format) of a block's activations. CUDA: float16 in the use_fp16 blocks, channels_last with
    fp16_channels_last (the official rule). CPU: bfloat16 in the use_fp16 blocks with cpu_bf16 (float16 is slow
    there; bfloat16 has float32's range, and conv_clamp applies as with float16), channels_last with
    cpu_channels_last in every block (oneDNN's convolutions are faster on it; the same numbers up to rounding)."""
    if device.type == 'cuda':
        half = use_fp16 and not force_fp32
        return (torch.float16 if half else torch.float32), (torch.channels_last if half and channels_last else torch.contiguous_format)
    half = use_fp16 and cpu_bf16 and not force_fp32
    return (torch.bfloat16 if half else torch.float32), (torch.channels_last if cpu_channels_last else torch.contiguous_format)

#----------------------------------------------------------------------------

@persistence.persistent_class
class SynthesisBlock(torch.nn.Module):
    """One resolution of the synthesis network: (learned constant or 2x upsampling conv), conv, and the image
    output of this resolution (skip: added to the upsampled image of the previous block)."""
    def __init__(self,
        in_channels,                            # Number of input channels, 0 = first block (starts from a learned constant).
        out_channels,                           # Number of output channels.
        w_dim,                                  # Intermediate latent (W) dimensionality.
        resolution,                             # Resolution of this block in pixels.
        img_channels,                           # Number of output color channels.
        is_last,                                # Is this the last (highest resolution) block?
        architecture            = 'skip',       # 'orig', 'skip' or 'resnet'.
        resample_filter         = [1,3,3,1],    # 1D low-pass filter taps used for upsampling.
        conv_clamp              = None,         # Clamp the output of convolution layers to +-conv_clamp, None = no clamp.
        use_fp16                = False,        # Run this block in float16 (CUDA; bfloat16 on CPU with cpu_bf16)?
        fp16_channels_last      = False,        # Use channels_last memory format with float16?
        fused_modconv_default   = True,         # Default fused_modconv: True, False, 'inference_only' (fused only in eval mode) or 'auto' (see forward).
        cpu_bf16                = False,        # On CPU, run the use_fp16 blocks in bfloat16?
        cpu_channels_last       = False,        # On CPU, use channels_last memory format?
        **layer_kwargs,                         # Arguments of SynthesisLayer.
    ):
        assert architecture in ['orig', 'skip', 'resnet']
        super().__init__()
        self.in_channels = in_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.is_last = is_last
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.channels_last = (use_fp16 and fp16_channels_last)
        self.fused_modconv_default = fused_modconv_default
        self.cpu_bf16 = cpu_bf16
        self.cpu_channels_last = cpu_channels_last
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(resample_filter))
        self.num_conv = 0
        self.num_torgb = 0

        if in_channels == 0:
            self.const = torch.nn.Parameter(torch.randn([out_channels, resolution, resolution]))

        if in_channels != 0:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim=w_dim, resolution=resolution, up=2,
                resample_filter=resample_filter, conv_clamp=conv_clamp, channels_last=self.channels_last, **layer_kwargs)
            self.num_conv += 1

        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim=w_dim, resolution=resolution,
            conv_clamp=conv_clamp, channels_last=self.channels_last, **layer_kwargs)
        self.num_conv += 1

        if is_last or architecture == 'skip':
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim,
                conv_clamp=conv_clamp, channels_last=self.channels_last)
            self.num_torgb += 1

        if in_channels != 0 and architecture == 'resnet':
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                resample_filter=resample_filter, channels_last=self.channels_last)

    def forward(self, x: torch.Tensor, img: torch.Tensor, ws: torch.Tensor, force_fp32: bool = False, fused_modconv=None, update_emas: bool = False, **layer_kwargs):
        _ = update_emas # the synthesis network keeps no running statistics
        misc.assert_shape(ws, [None, self.num_conv + self.num_torgb, self.w_dim])
        w_iter = iter(ws.unbind(dim=1))
        dtype, memory_format = block_precision(ws.device, self.use_fp16, self.channels_last, force_fp32, self.cpu_bf16, self.cpu_channels_last)
        if fused_modconv is None:
            fused_modconv = self.fused_modconv_default
        if fused_modconv == 'inference_only':
            fused_modconv = (not self.training)
        elif fused_modconv == 'auto':
            # Training: unfused, several times faster. Inference: fused for single images (the official tools'
            # numbers) and float32 CUDA batches, unfused for reduced precision (as StyleGAN2-ADA) and CPU batches,
            # where a grouped convolution per sample is slower than the shared one.
            fused_modconv = (not self.training) and (ws.shape[0] == 1 or (ws.device.type == 'cuda' and dtype == torch.float32))

        # Input.
        if self.in_channels == 0:
            x = self.const.to(dtype=dtype).unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
            x = x.contiguous(memory_format=memory_format)
        else:
            misc.assert_shape(x, [None, self.in_channels, self.resolution // 2, self.resolution // 2])
            x = x.to(dtype=dtype, memory_format=memory_format)

        # Main layers; resnet scales both branches by sqrt(1/2) to keep the variance of their sum.
        if self.in_channels == 0:
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
        elif self.architecture == 'resnet':
            y = self.skip(x, gain=np.sqrt(0.5))
            x = self.conv0(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, gain=np.sqrt(0.5), **layer_kwargs)
            x = y.add_(x)
        else:
            x = self.conv0(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)

        # Image output, always accumulated in float32.
        if img is not None:
            misc.assert_shape(img, [None, self.img_channels, self.resolution // 2, self.resolution // 2])
            img = upfirdn2d.upsample2d(img, self.resample_filter)
        if self.is_last or self.architecture == 'skip':
            y = self.torgb(x, next(w_iter), fused_modconv=fused_modconv)
            y = y.to(dtype=torch.float32, memory_format=torch.contiguous_format)
            img = img.add_(y) if img is not None else y

        assert x.dtype == dtype
        assert img is None or img.dtype == torch.float32
        return x, img

    def extra_repr(self) -> str:
        return f'resolution={self.resolution:d}, architecture={self.architecture:s}'

#----------------------------------------------------------------------------

@persistence.persistent_class
class SynthesisNetwork(torch.nn.Module):
    """ws [N, num_ws, w_dim] -> image [N, img_channels, img_resolution, img_resolution]."""
    def __init__(self,
        w_dim,                      # Intermediate latent (W) dimensionality.
        img_resolution,             # Output image resolution, a power of 2 >= 4.
        img_channels,               # Number of color channels.
        channel_base    = 32768,    # Overall multiplier for the number of channels.
        channel_max     = 512,      # Maximum number of channels in any layer.
        num_fp16_res    = 0,        # Use float16 for the N highest resolutions (CUDA only).
        **block_kwargs,             # Arguments of SynthesisBlock.
    ):
        assert img_resolution >= 4 and img_resolution & (img_resolution - 1) == 0
        super().__init__()
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_resolution_log2 = int(np.log2(img_resolution))
        self.img_channels = img_channels
        self.num_fp16_res = num_fp16_res
        self.block_resolutions = [2 ** i for i in range(2, self.img_resolution_log2 + 1)]
        channels_dict = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}
        fp16_resolution = max(2 ** (self.img_resolution_log2 + 1 - num_fp16_res), 8)

        self.num_ws = 0
        for res in self.block_resolutions:
            in_channels = channels_dict[res // 2] if res > 4 else 0
            out_channels = channels_dict[res]
            use_fp16 = (res >= fp16_resolution)
            is_last = (res == self.img_resolution)
            block = SynthesisBlock(in_channels, out_channels, w_dim=w_dim, resolution=res,
                img_channels=img_channels, is_last=is_last, use_fp16=use_fp16, **block_kwargs)
            # Consecutive blocks share a w: the torgb of one block uses the same w as conv0 of the next.
            self.num_ws += block.num_conv
            if is_last:
                self.num_ws += block.num_torgb
            setattr(self, f'b{res}', block)

    def forward(self, ws: torch.Tensor, **block_kwargs) -> torch.Tensor:
        block_ws = []
        with torch.autograd.profiler.record_function('split_ws'):
            misc.assert_shape(ws, [None, self.num_ws, self.w_dim])
            ws = ws.to(torch.float32)
            w_idx = 0
            for res in self.block_resolutions:
                block = getattr(self, f'b{res}')
                block_ws.append(ws.narrow(1, w_idx, block.num_conv + block.num_torgb))
                w_idx += block.num_conv

        x = img = None
        for res, cur_ws in zip(self.block_resolutions, block_ws):
            block = getattr(self, f'b{res}')
            x, img = block(x, img, cur_ws, **block_kwargs)
        return img

    def extra_repr(self) -> str:
        return ' '.join([
            f'w_dim={self.w_dim:d}, num_ws={self.num_ws:d},',
            f'img_resolution={self.img_resolution:d}, img_channels={self.img_channels:d},',
            f'num_fp16_res={self.num_fp16_res:d}'])

#----------------------------------------------------------------------------

@persistence.persistent_class
class Generator(torch.nn.Module):
    """StyleGAN2 generator: MappingNetwork followed by SynthesisNetwork."""
    def __init__(self,
        z_dim,                      # Input latent (Z) dimensionality, 0 = no latent.
        c_dim,                      # Conditioning label (C) dimensionality, 0 = unconditional.
        w_dim,                      # Intermediate latent (W) dimensionality.
        img_resolution,             # Output resolution, a power of 2 >= 4.
        img_channels,               # Number of output color channels.
        mapping_kwargs  = {},       # Arguments of MappingNetwork.
        **synthesis_kwargs,         # Arguments of SynthesisNetwork.
    ):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.synthesis = SynthesisNetwork(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels, **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **mapping_kwargs)

    def forward(self, z: torch.Tensor, c: torch.Tensor, truncation_psi: float = 1, truncation_cutoff: int = None, update_emas: bool = False, **synthesis_kwargs) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, update_emas=update_emas)
        img = self.synthesis(ws, update_emas=update_emas, **synthesis_kwargs)
        return img

#----------------------------------------------------------------------------

@persistence.persistent_class
class DiscriminatorBlock(torch.nn.Module):
    """One resolution of the discriminator: (fromrgb), conv, conv with 2x downsampling."""
    def __init__(self,
        in_channels,                        # Number of input channels, 0 = first block.
        tmp_channels,                       # Number of intermediate channels.
        out_channels,                       # Number of output channels.
        resolution,                         # Resolution of this block in pixels.
        img_channels,                       # Number of input color channels.
        first_layer_idx,                    # Index of the first layer of this block, counted over the whole D (for freeze_layers).
        architecture        = 'resnet',     # 'orig', 'skip' or 'resnet'.
        activation          = 'lrelu',      # Activation name from bias_act.activation_funcs.
        resample_filter     = [1,3,3,1],    # 1D low-pass filter taps used for downsampling.
        conv_clamp          = None,         # Clamp the output of convolution layers to +-conv_clamp, None = no clamp.
        use_fp16            = False,        # Run this block in float16 (CUDA; bfloat16 on CPU with cpu_bf16)?
        fp16_channels_last  = False,        # Use channels_last memory format with float16?
        cpu_bf16            = False,        # On CPU, run the use_fp16 blocks in bfloat16?
        cpu_channels_last   = False,        # On CPU, use channels_last memory format?
        freeze_layers       = 0,            # Freeze the first freeze_layers layers of D (transfer learning).
    ):
        assert in_channels in [0, tmp_channels]
        assert architecture in ['orig', 'skip', 'resnet']
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        self.img_channels = img_channels
        self.first_layer_idx = first_layer_idx
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.channels_last = (use_fp16 and fp16_channels_last)
        self.cpu_bf16 = cpu_bf16
        self.cpu_channels_last = cpu_channels_last
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(resample_filter))

        self.num_layers = 0
        def trainable_gen():
            while True:
                layer_idx = self.first_layer_idx + self.num_layers
                trainable = (layer_idx >= freeze_layers)
                self.num_layers += 1
                yield trainable
        trainable_iter = trainable_gen()

        if in_channels == 0 or architecture == 'skip':
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, kernel_size=1, activation=activation,
                trainable=next(trainable_iter), conv_clamp=conv_clamp, channels_last=self.channels_last)

        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, kernel_size=3, activation=activation,
            trainable=next(trainable_iter), conv_clamp=conv_clamp, channels_last=self.channels_last)

        self.conv1 = Conv2dLayer(tmp_channels, out_channels, kernel_size=3, activation=activation, down=2,
            trainable=next(trainable_iter), resample_filter=resample_filter, conv_clamp=conv_clamp, channels_last=self.channels_last)

        if architecture == 'resnet':
            self.skip = Conv2dLayer(tmp_channels, out_channels, kernel_size=1, bias=False, down=2,
                trainable=next(trainable_iter), resample_filter=resample_filter, channels_last=self.channels_last)

    def forward(self, x: torch.Tensor, img: torch.Tensor, force_fp32: bool = False):
        dtype, memory_format = block_precision((x if x is not None else img).device, self.use_fp16, self.channels_last, force_fp32, self.cpu_bf16, self.cpu_channels_last)

        # Input.
        if x is not None:
            misc.assert_shape(x, [None, self.in_channels, self.resolution, self.resolution])
            x = x.to(dtype=dtype, memory_format=memory_format)

        # FromRGB; skip also passes a downsampled image to the next block.
        if self.in_channels == 0 or self.architecture == 'skip':
            misc.assert_shape(img, [None, self.img_channels, self.resolution, self.resolution])
            img = img.to(dtype=dtype, memory_format=memory_format)
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            img = upfirdn2d.downsample2d(img, self.resample_filter) if self.architecture == 'skip' else None

        # Main layers; resnet scales both branches by sqrt(1/2) to keep the variance of their sum.
        if self.architecture == 'resnet':
            y = self.skip(x, gain=np.sqrt(0.5))
            x = self.conv0(x)
            x = self.conv1(x, gain=np.sqrt(0.5))
            x = y.add_(x)
        else:
            x = self.conv0(x)
            x = self.conv1(x)

        assert x.dtype == dtype
        return x, img

    def extra_repr(self) -> str:
        return f'resolution={self.resolution:d}, architecture={self.architecture:s}'

#----------------------------------------------------------------------------

@persistence.persistent_class
class MinibatchStdLayer(torch.nn.Module):
    """Append the standard deviation over groups of samples, averaged over features and pixels, as extra
    channels. Group g holds the samples n with n % (N // G) equal, i.e. strided, not consecutive."""
    def __init__(self,
        group_size,             # Samples per group, None = the whole minibatch; clipped to the minibatch size.
        num_channels = 1,       # Number of appended channels; the features are split into this many parts.
    ):
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N, C, H, W = x.shape
        with misc.suppress_tracer_warnings(): # as_tensor keeps the group size symbolic under tracing
            G = torch.min(torch.as_tensor(self.group_size), torch.as_tensor(N)) if self.group_size is not None else N
        F = self.num_channels
        c = C // F

        y = x.reshape(G, -1, F, c, H, W)    # [GnFcHW] split the minibatch into n groups of G and the channels into F parts
        y = y - y.mean(dim=0)               # [GnFcHW] subtract the group mean
        y = y.square().mean(dim=0)          # [nFcHW]  variance over the group
        y = (y + 1e-8).sqrt()               # [nFcHW]  stddev
        y = y.mean(dim=[2, 3, 4])           # [nF]     average over channels and pixels
        y = y.reshape(-1, F, 1, 1)          # [nF11]
        y = y.repeat(G, 1, H, W)            # [NFHW]   back to every sample and pixel
        x = torch.cat([x, y], dim=1)        # [N(C+F)HW]
        return x

    def extra_repr(self) -> str:
        return f'group_size={self.group_size}, num_channels={self.num_channels:d}'

#----------------------------------------------------------------------------

@persistence.persistent_class
class DiscriminatorEpilogue(torch.nn.Module):
    """The 4x4 end of D: minibatch stddev, conv, fc, and the output projected onto cmap."""
    def __init__(self,
        in_channels,                    # Number of input channels.
        cmap_dim,                       # Dimensionality of the mapped conditioning, 0 = plain logit output.
        resolution,                     # Resolution of this block in pixels (4).
        img_channels,                   # Number of input color channels.
        architecture        = 'resnet', # 'orig', 'skip' or 'resnet'.
        mbstd_group_size    = 4,        # Group size of the minibatch stddev layer, None = whole minibatch.
        mbstd_num_channels  = 1,        # Number of minibatch stddev channels, 0 = no minibatch stddev.
        activation          = 'lrelu',  # Activation name from bias_act.activation_funcs.
        conv_clamp          = None,     # Clamp the output of convolution layers to +-conv_clamp, None = no clamp.
    ):
        assert architecture in ['orig', 'skip', 'resnet']
        super().__init__()
        self.in_channels = in_channels
        self.cmap_dim = cmap_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.architecture = architecture

        if architecture == 'skip':
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation=activation)
        self.mbstd = MinibatchStdLayer(group_size=mbstd_group_size, num_channels=mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, kernel_size=3, activation=activation, conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * (resolution ** 2), in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def features(self, x: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
        """The output layer's features [N, cmap_dim] (or [N, 1]) before the projection onto cmap, in float32."""
        misc.assert_shape(x, [None, self.in_channels, self.resolution, self.resolution])
        dtype = torch.float32
        memory_format = torch.contiguous_format

        # FromRGB.
        x = x.to(dtype=dtype, memory_format=memory_format)
        if self.architecture == 'skip':
            misc.assert_shape(img, [None, self.img_channels, self.resolution, self.resolution])
            img = img.to(dtype=dtype, memory_format=memory_format)
            x = x + self.fromrgb(img)

        # Main layers.
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        return self.out(x)

    def forward(self, x: torch.Tensor, img: torch.Tensor, cmap: torch.Tensor, force_fp32: bool = False) -> torch.Tensor:
        _ = force_fp32 # the epilogue always runs in float32
        x = self.features(x, img)

        # Projection discriminator (Miyato & Koyama 2018): the logit is the scaled inner product with cmap.
        if self.cmap_dim > 0:
            misc.assert_shape(cmap, [None, self.cmap_dim])
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / np.sqrt(self.cmap_dim))

        assert x.dtype == torch.float32
        return x

    def extra_repr(self) -> str:
        return f'resolution={self.resolution:d}, architecture={self.architecture:s}'

#----------------------------------------------------------------------------

@persistence.persistent_class
class Discriminator(torch.nn.Module):
    """Timestep-aware StyleGAN2 discriminator D(img, c, t) -> logits [N, 1]. The label c and the diffusion step
    t, as one extra float column after c, go through a mapping network to cmap, onto which the epilogue
    projects its features."""
    def __init__(self,
        c_dim,                          # Conditioning label (C) dimensionality, 0 = unconditional; t is not counted.
        img_resolution,                 # Input resolution, a power of 2 >= 4.
        img_channels,                   # Number of input color channels.
        architecture        = 'resnet', # 'orig', 'skip' or 'resnet'.
        channel_base        = 32768,    # Overall multiplier for the number of channels.
        channel_max         = 512,      # Maximum number of channels in any layer.
        num_fp16_res        = 0,        # Use float16 for the N highest resolutions (CUDA only).
        conv_clamp          = None,     # Clamp the output of convolution layers to +-conv_clamp, None = no clamp.
        cmap_dim            = None,     # Dimensionality of the mapped [c, t], None = channels at 4x4.
        block_kwargs        = {},       # Arguments of DiscriminatorBlock.
        mapping_kwargs      = {},       # Arguments of MappingNetwork.
        epilogue_kwargs     = {},       # Arguments of DiscriminatorEpilogue.
    ):
        assert img_resolution >= 4 and img_resolution & (img_resolution - 1) == 0
        super().__init__()
        self.c_dim = c_dim
        self.img_resolution = img_resolution
        self.img_resolution_log2 = int(np.log2(img_resolution))
        self.img_channels = img_channels
        self.block_resolutions = [2 ** i for i in range(self.img_resolution_log2, 2, -1)]
        channels_dict = {res: min(channel_base // res, channel_max) for res in self.block_resolutions + [4]}
        fp16_resolution = max(2 ** (self.img_resolution_log2 + 1 - num_fp16_res), 8)
        if cmap_dim is None:
            cmap_dim = channels_dict[4]
        self.cmap_dim = cmap_dim

        common_kwargs = dict(img_channels=img_channels, architecture=architecture, conv_clamp=conv_clamp)
        cur_layer_idx = 0
        for res in self.block_resolutions:
            in_channels = channels_dict[res] if res < img_resolution else 0
            tmp_channels = channels_dict[res]
            out_channels = channels_dict[res // 2]
            use_fp16 = (res >= fp16_resolution)
            block = DiscriminatorBlock(in_channels, tmp_channels, out_channels, resolution=res,
                first_layer_idx=cur_layer_idx, use_fp16=use_fp16, **block_kwargs, **common_kwargs)
            setattr(self, f'b{res}', block)
            cur_layer_idx += block.num_layers
        # Unlike StyleGAN2-ADA, the mapping network exists for unconditional data too: it always sees t.
        self.mapping = MappingNetwork(z_dim=0, c_dim=c_dim + 1, w_dim=cmap_dim, num_ws=None, w_avg_beta=None, **mapping_kwargs)
        self.b4 = DiscriminatorEpilogue(channels_dict[4], cmap_dim=cmap_dim, resolution=4, **epilogue_kwargs, **common_kwargs)

    def forward(self, img: torch.Tensor, c: torch.Tensor, t: torch.Tensor, update_emas: bool = False, return_feats: bool = False, **block_kwargs):
        """Logits [N, 1]; with return_feats, (logits, the features entering the 4x4 epilogue) (InsGen's heads)."""
        _ = update_emas # D keeps no running statistics
        batch_size = img.shape[0]
        misc.assert_shape(img, [batch_size, self.img_channels, self.img_resolution, self.img_resolution])
        misc.assert_shape(c, [batch_size, self.c_dim])
        t = t.reshape(-1, 1) if t.ndim == 1 else t
        misc.assert_shape(t, [batch_size, 1])

        x = None
        for res in self.block_resolutions:
            block = getattr(self, f'b{res}')
            x, img = block(x, img, **block_kwargs)

        cmap = self.mapping(None, torch.cat([c.to(torch.float32), t.to(torch.float32)], dim=1))
        logits = self.b4(x, img, cmap)
        return (logits, x) if return_feats else logits

    def extra_repr(self) -> str:
        return f'c_dim={self.c_dim:d}, img_resolution={self.img_resolution:d}, img_channels={self.img_channels:d}'

#----------------------------------------------------------------------------

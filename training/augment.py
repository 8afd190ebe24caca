"""ADA: the augmentation pipeline of "Training Generative Adversarial Networks with Limited Data" (Karras et al.,
NeurIPS 2020), used by --aug=ada in front of the diffusion (training/diffusion.py sets its `p`).

Each op transforms each sample independently with probability (op strength) * p, where the buffer `p` is the
overall probability set from outside. The ops run in the paper's order, in five groups:
    pixel blitting    xflip, rotate90, xint (integer translation)          -> one 3x3 matrix per sample that maps
    geometric         scale, rotate (before and after aniso), aniso, xfrac -> output to input pixels, per group
    color             brightness, contrast, lumaflip, hue, saturation      -> one 4x4 matrix per sample (homogeneous RGB)
    image filtering   random gains of 4 frequency bands (a sym2 wavelet filter bank)
    corruption        additive Gaussian noise, cutout
The blits are executed exactly, by copying pixels (reflected at the borders). The general 3x3 matrix is executed
with little aliasing: reflect padding, 2x upsampling with the sym6 wavelet, bilinear grid_sample, downsampling
with the same filter. (StyleGAN2-ADA resamples the blits too; as sym6 is not symmetric, a flip done that way
comes out slightly filtered, about 15% RMS error on white noise.) Samples whose geometric matrix is the
identity, or whose band gains are all 1, skip that step, and the other ops are exact at their identity, so a
sample left alone by every op (every sample when p = 0) comes out unchanged. Everything is differentiable
w.r.t. the images, twice (R1 through the augmentation), via grid_sample_gradfix and conv2d_gradfix.

Images are [N, C, H, W] with pixel values centered on 0 (e.g. [-1, 1]): contrast scales around 0. The color
group needs C = 3 (RGB) or C = 1; a gray pixel g is treated as (g, g, g) and the result averaged back, so
brightness and contrast act as on RGB, lumaflip inverts (g -> -g), and hue and saturation, which leave gray
unchanged, are skipped. The other groups accept any C.

debug_percentile = q in [0, 1] replaces every random draw by its q-quantile and applies every enabled op to
every sample, regardless of p, for visualizing the pipeline. Uniform draws take the uniform quantile, Gaussian
ones the normal quantile sqrt(2) * erfinv(2q - 1) (StyleGAN2-ADA uses erfinv(2q - 1), without the sqrt(2)),
discrete ones floor(q * k) capped at k - 1; the second rotation is 0. q = 0.5 leaves the continuous ops at the
identity, while xflip, lumaflip (floor(1) = 1) and rotate90 (k = 2) are applied."""

from typing import Optional

import numpy as np
import torch

import dnnlib
from torch_utils import misc, persistence
from torch_utils.ops import conv2d_gradfix, grid_sample_gradfix, upfirdn2d

#----------------------------------------------------------------------------
# Low-pass filters of two orthonormal symlet wavelets (published constants: taps sum to sqrt(2), unit energy,
# orthogonal to their own even shifts). sym6 resamples the geometric transforms, sym2 builds the filter bank.

SYM2 = [-0.12940952255092145, 0.22414386804185735, 0.836516303737469, 0.48296291314469025]
SYM6 = [0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633, 0.4910559419267466, 0.787641141030194,
        0.3379294217276218, -0.07263752278646252, -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148]

#----------------------------------------------------------------------------
# Homogeneous transformation matrices. Entries are Python numbers or per-sample tensors [N]; the result is
# [N, k, k] if any entry is a tensor (all on its device), else a constant [k, k] on `device`.

def _matrix(*rows, device: torch.device = None) -> torch.Tensor:
    ref = next((e for row in rows for e in row if isinstance(e, torch.Tensor)), None)
    if ref is None:
        return torch.tensor(rows, dtype=torch.float32, device=device)
    entries = [torch.as_tensor(e, dtype=torch.float32, device=ref.device).expand(ref.shape) for row in rows for e in row]
    return torch.stack(entries, dim=-1).reshape(list(ref.shape) + [len(rows), len(rows)])

def translate2d(tx, ty, device: torch.device = None) -> torch.Tensor:
    return _matrix([1, 0, tx], [0, 1, ty], [0, 0, 1], device=device)

def scale2d(sx, sy, device: torch.device = None) -> torch.Tensor:
    return _matrix([sx, 0, 0], [0, sy, 0], [0, 0, 1], device=device)

def rotate2d(cos, sin, device: torch.device = None) -> torch.Tensor:
    """Rotation given by its cosine and sine (so that quarter turns can be exact)."""
    return _matrix([cos, -sin, 0], [sin, cos, 0], [0, 0, 1], device=device)

def translate3d(tx, ty, tz) -> torch.Tensor:
    return _matrix([1, 0, 0, tx], [0, 1, 0, ty], [0, 0, 1, tz], [0, 0, 0, 1])

def scale3d(sx, sy, sz) -> torch.Tensor:
    return _matrix([sx, 0, 0, 0], [0, sy, 0, 0], [0, 0, sz, 0], [0, 0, 0, 1])

def rotate3d(axis, theta: torch.Tensor) -> torch.Tensor:
    """Rotation by theta [N] around the unit vector `axis` (3 numbers), by Rodrigues' formula."""
    x, y, z = axis
    c, s = torch.cos(theta), torch.sin(theta)
    d = 1 - c
    return _matrix(
        [x * x * d + c,     x * y * d - z * s, x * z * d + y * s, 0],
        [y * x * d + z * s, y * y * d + c,     y * z * d - x * s, 0],
        [z * x * d - y * s, z * y * d + x * s, z * z * d + c,     0],
        [0,                 0,                 0,                 1])

#----------------------------------------------------------------------------

def reflect_index(i: torch.Tensor, size: int) -> torch.Tensor:
    """Map integer pixel indices onto [0, size) by reflection at the edges (the edge pixel is not repeated),
    continued periodically, so that any distance outside the image is valid."""
    if size == 1:
        return torch.zeros_like(i)
    i = i.remainder(2 * (size - 1))
    return torch.where(i < size, i, 2 * (size - 1) - i)

def reflect_pad(x: torch.Tensor, pad_x0: int, pad_x1: int, pad_y0: int, pad_y1: int) -> torch.Tensor:
    """Reflect padding of [N, C, H, W] like torch's mode='reflect', but of any width."""
    x = x.index_select(3, reflect_index(torch.arange(-pad_x0, x.shape[3] + pad_x1, device=x.device), x.shape[3]))
    return x.index_select(2, reflect_index(torch.arange(-pad_y0, x.shape[2] + pad_y1, device=x.device), x.shape[2]))

#----------------------------------------------------------------------------

def band_filters(lowpass=SYM2, num_bands: int = 4) -> np.ndarray:
    """Zero-phase filters [num_bands, taps] that split a 1D signal into octave bands, low to high, and sum to a
    unit impulse. The half-band pair L, H (autocorrelations of the wavelet's low- and high-pass filters, halved)
    sums to an impulse: the finest band is H, and each coarser band repeats the split on what L kept, one
    octave lower (filters dilated by 2 and low-passed by L); the lowest band is the low-pass remainder."""
    lo = np.asarray(lowpass, dtype=np.float64)
    hi = lo * (-1.0) ** np.arange(lo.size)
    lo2 = np.convolve(lo, lo[::-1]) / 2
    hi2 = np.convolve(hi, hi[::-1]) / 2
    bank = np.zeros([num_bands, 1])
    bank[0, 0] = 1
    for band in range(1, num_bands):
        # Dilate what has been built so far by one octave and low-pass it, then split off the next band.
        dilated = np.zeros([num_bands, bank.shape[1] * 2 - 1])
        dilated[:, ::2] = bank
        bank = np.stack([np.convolve(row, lo2) for row in dilated])
        start = (bank.shape[1] - hi2.size) // 2
        bank[band, start : start + hi2.size] += hi2
    return bank

#----------------------------------------------------------------------------

def _quantiles(q: float, device: torch.device) -> dnnlib.EasyDict:
    """Quantiles at q of the distributions that the pipeline draws from."""
    q = torch.as_tensor(q, dtype=torch.float32, device=device)
    return dnnlib.EasyDict(
        unit        = q,                                        # U[0, 1]
        uniform     = q * 2 - 1,                                # U[-1, 1]
        normal      = torch.erfinv(q * 2 - 1) * np.sqrt(2),     # N(0, 1)
        half_normal = torch.erfinv(q) * np.sqrt(2),             # |N(0, 1)|
        discrete    = lambda k: torch.floor(q * k).clamp(max=k - 1), # U{0, ..., k-1}
    )

#----------------------------------------------------------------------------

@persistence.persistent_class
class AugmentPipe(torch.nn.Module):
    """The ADA pipeline: images = augment_pipe(images); set augment_pipe.p to control how much is augmented."""
    def __init__(self,
        xflip           = 0,            # Strength of x-flips (probability multiplier).
        rotate90        = 0,            # Strength of rotations by a multiple of 90 degrees.
        xint            = 0,            # Strength of integer translations.
        xint_max        = 0.125,        # Largest integer translation, fraction of the image size.
        scale           = 0,            # Strength of isotropic scaling.
        rotate          = 0,            # Strength of arbitrary rotations.
        aniso           = 0,            # Strength of anisotropic scaling.
        xfrac           = 0,            # Strength of fractional translations.
        scale_std       = 0.2,          # Std of log2 of the isotropic scale factor.
        rotate_max      = 1,            # Largest rotation, fraction of a half turn.
        aniso_std       = 0.2,          # Std of log2 of the anisotropic scale factor.
        xfrac_std       = 0.125,        # Std of the fractional translation, fraction of the image size.
        brightness      = 0,            # Strength of brightness offsets.
        contrast        = 0,            # Strength of contrast scaling.
        lumaflip        = 0,            # Strength of luma flips (reflection along the gray axis).
        hue             = 0,            # Strength of hue rotations.
        saturation      = 0,            # Strength of saturation scaling.
        brightness_std  = 0.2,          # Std of the brightness offset (pixel value units).
        contrast_std    = 0.5,          # Std of log2 of the contrast factor.
        hue_max         = 1,            # Largest hue rotation, fraction of a half turn.
        saturation_std  = 1,            # Std of log2 of the saturation factor.
        imgfilter       = 0,            # Strength of random band gains.
        imgfilter_bands = [1,1,1,1],    # Strength multiplier of each band, low to high frequencies.
        imgfilter_std   = 1,            # Std of log2 of a band gain.
        noise           = 0,            # Strength of additive Gaussian noise.
        cutout          = 0,            # Strength of cutout.
        noise_std       = 0.1,          # Std of the noise's standard deviation (half-normal).
        cutout_size     = 0.5,          # Side of the cutout square, fraction of the image size.
    ):
        super().__init__()
        self.register_buffer('p', torch.ones([])) # Overall probability multiplier, set from outside.

        self.xflip, self.rotate90, self.xint, self.xint_max = float(xflip), float(rotate90), float(xint), float(xint_max)
        self.scale, self.rotate, self.aniso, self.xfrac = float(scale), float(rotate), float(aniso), float(xfrac)
        self.scale_std, self.rotate_max = float(scale_std), float(rotate_max)
        self.aniso_std, self.xfrac_std = float(aniso_std), float(xfrac_std)
        self.brightness, self.contrast, self.lumaflip = float(brightness), float(contrast), float(lumaflip)
        self.hue, self.saturation = float(hue), float(saturation)
        self.brightness_std, self.contrast_std = float(brightness_std), float(contrast_std)
        self.hue_max, self.saturation_std = float(hue_max), float(saturation_std)
        self.imgfilter, self.imgfilter_bands, self.imgfilter_std = float(imgfilter), [float(b) for b in imgfilter_bands], float(imgfilter_std)
        self.noise, self.cutout, self.noise_std, self.cutout_size = float(noise), float(cutout), float(noise_std), float(cutout_size)

        self.register_buffer('Hz_geom', upfirdn2d.setup_filter(SYM6))
        self.register_buffer('Hz_fbank', torch.as_tensor(band_filters(SYM2), dtype=torch.float32))
        if len(self.imgfilter_bands) != self.Hz_fbank.shape[0]:
            raise dnnlib.UserError(f'AugmentPipe: imgfilter_bands expects {self.Hz_fbank.shape[0]} band strengths, got {len(self.imgfilter_bands)}')

    def _draw(self, value: torch.Tensor, prob, debug=None) -> torch.Tensor:
        """Per-sample parameter, 0 meaning the identity: `value` with probability prob, else 0. In debug mode
        `debug` (the quantile) for every sample; callers pass `Q and <quantile>`, which is None otherwise."""
        if debug is not None:
            return torch.as_tensor(debug, dtype=value.dtype, device=value.device).expand(value.shape)
        apply = torch.rand([value.shape[0]] + [1] * (value.ndim - 1), device=value.device) < prob
        return torch.where(apply, value, torch.zeros_like(value))

    def forward(self, images: torch.Tensor, debug_percentile: Optional[float] = None) -> torch.Tensor:
        """images: [N, C, H, W], any float dtype. Draws use torch's RNG on the images' device."""
        misc.assert_shape(images, [None, None, None, None])
        N, C, H, W = images.shape
        device = images.device
        Q = None if debug_percentile is None else _quantiles(debug_percentile, device)
        p = self.p

        # Geometric transformations as matrices that map output pixels to input pixels, in coordinates centered
        # on the image; composing inverses right to left applies the ops in order. The pixel blits come first,
        # so they are executed first and exactly, by indexing; the general part is then resampled.
        I_3 = torch.eye(3, device=device)
        B_inv = I_3.repeat([N, 1, 1])
        if self.xflip > 0:
            i = self._draw(torch.floor(torch.rand([N], device=device) * 2), self.xflip * p, Q and Q.discrete(2))
            B_inv = B_inv @ scale2d(1 - 2 * i, 1)
        if self.rotate90 > 0:
            k = self._draw(torch.floor(torch.rand([N], device=device) * 4), self.rotate90 * p, Q and Q.discrete(4)).long()
            B_inv = B_inv @ rotate2d(torch.tensor([1.0, 0, -1, 0], device=device)[k], torch.tensor([0.0, 1, 0, -1], device=device)[k])
        if self.xint > 0:
            t = self._draw((torch.rand([N, 2], device=device) * 2 - 1) * self.xint_max, self.xint * p, Q and Q.uniform * self.xint_max)
            B_inv = B_inv @ translate2d(-torch.round(t[:, 0] * W), -torch.round(t[:, 1] * H))
        images = self._apply_to(images, (B_inv != I_3).flatten(1).any(dim=1), lambda x, idx: self._blit(x, B_inv[idx]))

        G_inv = I_3.repeat([N, 1, 1])
        if self.scale > 0:
            s = self._draw(torch.randn([N], device=device) * self.scale_std, self.scale * p, Q and Q.normal * self.scale_std)
            G_inv = G_inv @ scale2d(torch.exp2(-s), torch.exp2(-s))
        # Rotation happens before and/or after the anisotropic scaling, each with the probability that makes
        # P(at least one) = rotate * p.
        p_rot = 1 - torch.sqrt((1 - self.rotate * p).clamp(0, 1))
        if self.rotate > 0:
            theta = self._draw((torch.rand([N], device=device) * 2 - 1) * np.pi * self.rotate_max, p_rot, Q and Q.uniform * np.pi * self.rotate_max)
            G_inv = G_inv @ rotate2d(torch.cos(theta), torch.sin(theta))
        if self.aniso > 0:
            s = self._draw(torch.randn([N], device=device) * self.aniso_std, self.aniso * p, Q and Q.normal * self.aniso_std)
            G_inv = G_inv @ scale2d(torch.exp2(-s), torch.exp2(s))
        if self.rotate > 0:
            theta = self._draw((torch.rand([N], device=device) * 2 - 1) * np.pi * self.rotate_max, p_rot, Q and 0) # 0 in debug mode.
            G_inv = G_inv @ rotate2d(torch.cos(theta), torch.sin(theta))
        if self.xfrac > 0:
            t = self._draw(torch.randn([N, 2], device=device) * self.xfrac_std, self.xfrac * p, Q and Q.normal * self.xfrac_std)
            G_inv = G_inv @ translate2d(-t[:, 0] * W, -t[:, 1] * H)
        images = self._apply_to(images, (G_inv != I_3).flatten(1).any(dim=1), lambda x, idx: self._warp(x, G_inv[idx]))

        # Color transformations: C acts on homogeneous RGB columns; composing left to right applies the ops in order.
        C_mat = torch.eye(4, device=device).repeat([N, 1, 1])
        luma = np.array([1, 1, 1, 0]) / np.sqrt(3)
        luma_proj = torch.as_tensor(np.outer(luma, luma), dtype=torch.float32, device=device)              # Onto the gray axis.
        chroma_proj = torch.as_tensor(np.diag([1, 1, 1, 0]), dtype=torch.float32, device=device) - luma_proj # Onto the plane orthogonal to it.
        if self.brightness > 0:
            b = self._draw(torch.randn([N], device=device) * self.brightness_std, self.brightness * p, Q and Q.normal * self.brightness_std)
            C_mat = translate3d(b, b, b) @ C_mat
        if self.contrast > 0:
            c = torch.exp2(self._draw(torch.randn([N], device=device) * self.contrast_std, self.contrast * p, Q and Q.normal * self.contrast_std))
            C_mat = scale3d(c, c, c) @ C_mat
        if self.lumaflip > 0:
            i = self._draw(torch.floor(torch.rand([N, 1, 1], device=device) * 2), self.lumaflip * p, Q and Q.discrete(2))
            C_mat = (torch.eye(4, device=device) - 2 * luma_proj * i) @ C_mat # Householder reflection of the luma.
        if self.hue > 0 and C > 1:
            theta = self._draw((torch.rand([N], device=device) * 2 - 1) * np.pi * self.hue_max, self.hue * p, Q and Q.uniform * np.pi * self.hue_max)
            C_mat = rotate3d(luma[:3], theta) @ C_mat
        if self.saturation > 0 and C > 1:
            s = torch.exp2(self._draw(torch.randn([N, 1, 1], device=device) * self.saturation_std, self.saturation * p, Q and Q.normal * self.saturation_std))
            C_mat = (torch.eye(4, device=device) + chroma_proj * (s - 1)) @ C_mat
        if max(self.brightness, self.contrast, self.lumaflip, self.hue, self.saturation) > 0:
            C_mat = C_mat.to(images.dtype)
            x = images.reshape([N, C, H * W])
            if C == 3:
                x = C_mat[:, :3, :3] @ x + C_mat[:, :3, 3:]
            elif C == 1: # The mean over output channels of C applied to (g, g, g).
                x = x * (C_mat[:, :3, :3].sum(dim=[1, 2]) / 3).reshape([N, 1, 1]) + C_mat[:, :3, 3].mean(dim=1).reshape([N, 1, 1])
            else:
                raise dnnlib.UserError(f'AugmentPipe: the color augmentations expect 3 (RGB) or 1 (gray) image channels, got {C}')
            images = x.reshape([N, C, H, W])

        # Image-space filtering: a random gain per band, normalized so that a signal whose power spectrum falls
        # as 1/f (power 10:1:1:1 in the 4 bands) keeps its expected power; the 1D filter runs along both axes.
        if self.imgfilter > 0:
            num_bands = self.Hz_fbank.shape[0]
            expected_power = torch.as_tensor(np.array([10, 1, 1, 1]) / 13, dtype=torch.float32, device=device)
            gains = torch.ones([N, num_bands], device=device)
            active = torch.zeros([N], dtype=torch.bool, device=device)
            for band, band_strength in enumerate(self.imgfilter_bands):
                debug = Q and Q.normal * self.imgfilter_std * (band_strength > 0)
                log_gain = self._draw(torch.randn([N], device=device) * self.imgfilter_std, self.imgfilter * band_strength * p, debug)
                active = active | (log_gain != 0)
                g = torch.where(torch.arange(num_bands, device=device) == band, torch.exp2(log_gain)[:, None], torch.ones_like(gains))
                gains = gains * g / (expected_power * g.square()).sum(dim=1, keepdim=True).sqrt()
            images = self._apply_to(images, active, lambda x, idx: self._filter(x, gains[idx] @ self.Hz_fbank))

        # Image-space corruptions.
        if self.noise > 0:
            sigma = self._draw(torch.randn([N, 1, 1, 1], device=device).abs() * self.noise_std, self.noise * p, Q and Q.half_normal * self.noise_std)
            images = images + torch.randn([N, C, H, W], device=device).to(images.dtype) * sigma.to(images.dtype)
        if self.cutout > 0:
            size = self._draw(torch.full([N, 1, 1], self.cutout_size, device=device), self.cutout * p, Q and self.cutout_size)
            center = torch.rand([N, 2, 1, 1], device=device) if Q is None else Q.unit.expand([N, 2, 1, 1])
            outside_x = ((torch.arange(W, device=device) + 0.5) / W - center[:, 0]).abs() >= size / 2 # [N, 1, W]
            outside_y = ((torch.arange(H, device=device)[:, None] + 0.5) / H - center[:, 1]).abs() >= size / 2 # [N, H, 1]
            images = images * (outside_x | outside_y).unsqueeze(1).to(images.dtype)
        return images

    @staticmethod
    def _apply_to(images: torch.Tensor, active: torch.Tensor, fn) -> torch.Tensor:
        """fn(images[idx], idx) for the samples where `active` is set (one host sync); the others are untouched."""
        idx = active.nonzero()[:, 0]
        if idx.numel() == 0:
            return images
        if idx.numel() == images.shape[0]:
            return fn(images, idx)
        return images.index_copy(0, idx, fn(images[idx], idx))

    @staticmethod
    def _blit(images: torch.Tensor, B_inv: torch.Tensor) -> torch.Tensor:
        """Copy pixels of images [n, C, H, W]: output pixel q takes input pixel B_inv q ([n, 3, 3], integer up to
        half-pixel centering, which rounds up), reflected at the borders."""
        n, C, H, W = images.shape
        cx, cy = (W - 1) / 2, (H - 1) / 2
        ys, xs = torch.meshgrid(torch.arange(H, device=images.device) - cy, torch.arange(W, device=images.device) - cx, indexing='ij')
        src = B_inv[:, :2, :2] @ torch.stack([xs.flatten(), ys.flatten()]).to(B_inv.dtype) + B_inv[:, :2, 2:] # [n, xy, H * W]
        ix = reflect_index(torch.floor(src[:, 0] + cx + 0.5).long(), W)
        iy = reflect_index(torch.floor(src[:, 1] + cy + 0.5).long(), H)
        flat = (iy * W + ix).unsqueeze(1).expand([n, C, H * W])
        return images.reshape([n, C, H * W]).gather(2, flat).reshape([n, C, H, W])

    def _warp(self, images: torch.Tensor, G_inv: torch.Tensor) -> torch.Tensor:
        """Resample images [n, C, H, W] at G_inv [n, 3, 3] (output pixel -> input pixel, centered coordinates)."""
        n, C, H, W = images.shape
        device = images.device
        pad = self.Hz_geom.shape[0] // 4 # Half the filter's support, in input pixels.

        # Reflect-pad the input to cover every output corner's source plus the filter support (at most one
        # image size per side; beyond that grid_sample reads zeros).
        cx, cy = (W - 1) / 2, (H - 1) / 2
        corners = torch.tensor([[-cx, -cy, 1], [cx, -cy, 1], [cx, cy, 1], [-cx, cy, 1]], device=device).t()
        src = (G_inv @ corners)[:, :2, :].permute(1, 0, 2).flatten(1) # [xy, n * corner]
        margin = torch.cat([-src, src]).amax(dim=1) + torch.tensor([pad * 2 - cx, pad * 2 - cy] * 2, device=device) # [x0, y0, x1, y1]
        margin = torch.minimum(margin.clamp(min=0), torch.tensor([W - 1, H - 1] * 2, device=device))
        mx0, my0, mx1, my1 = [int(m) for m in margin.ceil().tolist()]
        images = reflect_pad(images, mx0, mx1, my0, my1)
        G_inv = translate2d((mx0 - mx1) / 2, (my0 - my1) / 2, device=device) @ G_inv # Input center moved by the padding.

        # 2x upsampling doubles the centered coordinates. sym6 is not symmetric: the upsampled content sits about
        # half an upsampled pixel off where a symmetric filter puts it, so input and output coordinates are both
        # taken relative to (-0.5, -0.5); the downsampling's flipped filter undoes the offset. (StyleGAN2-ADA's
        # constant; the low-frequency offset alone, 0.40, resamples smooth content more accurately and high
        # frequencies less so.)
        images = upfirdn2d.upsample2d(images, self.Hz_geom, up=2)
        G_inv = scale2d(2, 2, device=device) @ G_inv @ scale2d(0.5, 0.5, device=device)
        G_inv = translate2d(-0.5, -0.5, device=device) @ G_inv @ translate2d(0.5, 0.5, device=device)

        # Sample an output that is `pad` input pixels larger on each side, for the downsampling filter to crop.
        # affine_grid works in [-1, 1] coordinates that span the image's outer edges.
        out_h, out_w = (H + pad * 2) * 2, (W + pad * 2) * 2
        theta = scale2d(2 / images.shape[3], 2 / images.shape[2], device=device) @ G_inv @ scale2d(out_w / 2, out_h / 2, device=device)
        grid = torch.nn.functional.affine_grid(theta[:, :2, :].to(images.dtype), [n, C, out_h, out_w], align_corners=False)
        images = grid_sample_gradfix.grid_sample(images, grid)
        return upfirdn2d.downsample2d(images, self.Hz_geom, down=2, padding=-pad * 2, flip_filter=True)

    def _filter(self, images: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
        """Filter each sample of images [n, C, H, W] separably with its own zero-phase 1D filter taps [n, T]."""
        n, C, H, W = images.shape
        weight = taps.to(images.dtype).repeat_interleave(C, dim=0).reshape([n * C, 1, 1, -1])
        half = taps.shape[1] // 2
        x = reflect_pad(images, half, half, half, half).reshape([1, n * C, H + half * 2, W + half * 2])
        x = conv2d_gradfix.conv2d(x, weight, groups=n * C)
        x = conv2d_gradfix.conv2d(x, weight.transpose(2, 3), groups=n * C)
        return x.reshape([n, C, H, W])

#----------------------------------------------------------------------------

"""DiffAugment (Zhao et al., "Differentiable Augmentation for Data-Efficient GAN Training", NeurIPS 2020):
random color, translation and cutout, differentiable w.r.t. the images so that G can be trained through them.

Used by the diffusion (training/diffusion.py) with --aug=diff: the same augmentation is applied to real and
generated images before the diffusion. Every draw uses torch's global RNG on the images' device, one
independent draw per sample. Images are [N, C, H, W] (or [N, H, W, C] with channels_first=False), any C."""

import torch

import dnnlib
from torch_utils import persistence

#----------------------------------------------------------------------------
# Color: brightness, saturation and contrast, each with its own random factor per sample.

def rand_brightness(x: torch.Tensor) -> torch.Tensor:
    """Add a per-sample offset drawn from U[-0.5, 0.5)."""
    return x + (torch.rand([x.shape[0], 1, 1, 1], dtype=x.dtype, device=x.device) - 0.5)

def rand_saturation(x: torch.Tensor) -> torch.Tensor:
    """Scale each pixel's deviation from its channel mean by U[0, 2); the identity for 1-channel images."""
    x_mean = x.mean(dim=1, keepdim=True)
    return (x - x_mean) * (torch.rand([x.shape[0], 1, 1, 1], dtype=x.dtype, device=x.device) * 2) + x_mean

def rand_contrast(x: torch.Tensor) -> torch.Tensor:
    """Scale each sample's deviation from its overall mean by U[0.5, 1.5)."""
    x_mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - x_mean) * (torch.rand([x.shape[0], 1, 1, 1], dtype=x.dtype, device=x.device) + 0.5) + x_mean

#----------------------------------------------------------------------------

def translate(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """Integer shift per sample with zero fill: out[n, :, i, j] = x[n, :, i + dy[n], j + dx[n]], 0 outside.
    dy, dx are int64 [N]."""
    N, _C, H, W = x.shape
    # Indices that fall outside the image are clamped onto a one-pixel zero border: no host sync for the shift range.
    x_pad = torch.nn.functional.pad(x, [1, 1, 1, 1])
    rows = (torch.arange(H, device=x.device)[None, :] + dy[:, None] + 1).clamp(0, H + 1) # [N, H]
    cols = (torch.arange(W, device=x.device)[None, :] + dx[:, None] + 1).clamp(0, W + 1) # [N, W]
    batch = torch.arange(N, device=x.device)[:, None, None]
    # Gather in NHWC so that the advanced indices select whole pixels; plain indexing keeps the gradient.
    out = x_pad.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2)

def rand_translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each sample by a random integer in [-s, s] per axis, s = round(ratio * size), zero fill."""
    shift_h, shift_w = int(x.shape[2] * ratio + 0.5), int(x.shape[3] * ratio + 0.5)
    dy = torch.randint(-shift_h, shift_h + 1, [x.shape[0]], device=x.device)
    dx = torch.randint(-shift_w, shift_w + 1, [x.shape[0]], device=x.device)
    return translate(x, dy, dx)

#----------------------------------------------------------------------------

def cutout_mask(height: int, width: int, cy: torch.Tensor, cx: torch.Tensor, size_h: int, size_w: int) -> torch.Tensor:
    """[N, 1, H, W] mask that is 0 inside a size_h x size_w rectangle whose top-left corner is
    (cy - size_h // 2, cx - size_w // 2) (clipped at the image border) and 1 elsewhere."""
    rows = torch.arange(height, device=cy.device)[None, :] - (cy[:, None] - size_h // 2) # [N, H]
    cols = torch.arange(width, device=cx.device)[None, :] - (cx[:, None] - size_w // 2) # [N, W]
    inside_rows = (rows >= 0) & (rows < size_h)
    inside_cols = (cols >= 0) & (cols < size_w)
    return ~(inside_rows[:, :, None] & inside_cols[:, None, :])[:, None]

def rand_cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero a random rectangle of round(ratio * size) per axis; its center may lie anywhere in the image,
    so the rectangle can be partly outside (as in the DiffAugment release)."""
    N, _C, H, W = x.shape
    size_h, size_w = int(H * ratio + 0.5), int(W * ratio + 0.5)
    cy = torch.randint(0, H + (1 - size_h % 2), [N], device=x.device)
    cx = torch.randint(0, W + (1 - size_w % 2), [N], device=x.device)
    return x * cutout_mask(H, W, cy, cx, size_h, size_w).to(x.dtype)

#----------------------------------------------------------------------------

AUGMENT_FNS = {
    'color':        [rand_brightness, rand_saturation, rand_contrast],
    'translation':  [rand_translation],
    'cutout':       [rand_cutout],
}

def parse_policy(policy: str) -> list:
    """Split 'color,translation,cutout' into names; '' means no augmentation. Unknown names are a UserError."""
    names = [name.strip() for name in policy.split(',') if name.strip()]
    for name in names:
        if name not in AUGMENT_FNS:
            raise dnnlib.UserError(f'--diffaug_policy: unknown DiffAugment op "{name}", expected a comma-separated subset of {",".join(AUGMENT_FNS)}')
    return names

#----------------------------------------------------------------------------

def DiffAugment(x: torch.Tensor, policy: str = 'color,translation,cutout', channels_first: bool = True) -> torch.Tensor:
    """Apply the ops of `policy` in the order given, each with fresh random parameters per sample."""
    names = parse_policy(policy)
    if not names:
        return x
    if not channels_first:
        x = x.permute(0, 3, 1, 2)
    for name in names:
        for fn in AUGMENT_FNS[name]:
            x = fn(x)
    if not channels_first:
        x = x.permute(0, 2, 3, 1)
    return x.contiguous()

#----------------------------------------------------------------------------

@persistence.persistent_class
class DiffAugmentPipe(torch.nn.Module):
    """DiffAugment as a module (no parameters), so that it can sit inside the diffusion and be pickled with it."""
    def __init__(self,
        policy = 'color,translation,cutout',    # comma-separated subset of color, translation, cutout
    ):
        super().__init__()
        parse_policy(policy) # Fail at construction, not at the first minibatch.
        self.policy = policy

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return DiffAugment(x, policy=self.policy, channels_first=True)

    def extra_repr(self) -> str:
        return f'policy={self.policy!r}'

#----------------------------------------------------------------------------

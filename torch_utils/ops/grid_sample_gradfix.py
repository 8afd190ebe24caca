"""Bilinear grid_sample that can be differentiated twice, for R1 through geometric augmentations.

The ADA pipeline warps images with grid_sample(input, grid), and R1 regularization differentiates the
gradient w.r.t. the images, so grid_sample needs a double backward. StyleGAN2-ADA shipped a custom op
because PyTorch of its time lacked one; current PyTorch differentiates grid_sample to any order, so
this module only fixes the mode, keeps the names that augmentation code (and official pickles of it)
use, and gives the same numbers on every device."""

import torch

#----------------------------------------------------------------------------

enabled = False # Kept for callers that set it (the training loop does); native autograd serves both values.

#----------------------------------------------------------------------------

def grid_sample(input: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """torch.nn.functional.grid_sample with bilinear interpolation, zero padding and align_corners=False."""
    return torch.nn.functional.grid_sample(input=input, grid=grid, mode='bilinear', padding_mode='zeros', align_corners=False)

#----------------------------------------------------------------------------

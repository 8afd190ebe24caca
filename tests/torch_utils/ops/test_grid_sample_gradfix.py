"""grid_sample_gradfix: bilinear sampling with zero padding and align_corners=False against a NumPy loop
over the closed-form interpolation, and first and second derivatives by finite differences."""

import numpy as np
import pytest
import torch

from torch_utils.ops import grid_sample_gradfix

#----------------------------------------------------------------------------

def _np_grid_sample(img: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Bilinear lookup; grid (x, y) in [-1, 1] spans the outer pixel edges; samples outside count as 0."""
    n, c, h, w = img.shape
    _, oh, ow, _ = grid.shape
    out = np.zeros([n, c, oh, ow])
    for i in range(n):
        for r in range(oh):
            for s in range(ow):
                px = ((grid[i, r, s, 0] + 1) * w - 1) / 2
                py = ((grid[i, r, s, 1] + 1) * h - 1) / 2
                x0, y0 = int(np.floor(px)), int(np.floor(py))
                for yy, wy in [(y0, y0 + 1 - py), (y0 + 1, py - y0)]:
                    for xx, wx in [(x0, x0 + 1 - px), (x0 + 1, px - x0)]:
                        if 0 <= yy < h and 0 <= xx < w:
                            out[i, :, r, s] += wy * wx * img[i, :, yy, xx]
    return out

#----------------------------------------------------------------------------

@pytest.mark.parametrize('enabled', [False, True])
def test_matches_numpy(enabled, monkeypatch):
    monkeypatch.setattr(grid_sample_gradfix, 'enabled', enabled)
    rng = np.random.default_rng(0)
    img = rng.normal(size=[2, 3, 4, 5])
    grid = rng.uniform(-1.3, 1.3, size=[2, 3, 4, 2]) # Some samples fall (partly) outside the image.
    y = grid_sample_gradfix.grid_sample(torch.tensor(img), torch.tensor(grid))
    np.testing.assert_allclose(y.numpy(), _np_grid_sample(img, grid), rtol=1e-12, atol=1e-12)

def test_identity_grid_reproduces_image():
    img = torch.randn([1, 2, 3, 4], dtype=torch.float64)
    theta = torch.tensor([[[1, 0, 0], [0, 1, 0]]], dtype=torch.float64)
    grid = torch.nn.functional.affine_grid(theta, [1, 2, 3, 4], align_corners=False)
    torch.testing.assert_close(grid_sample_gradfix.grid_sample(img, grid), img)

def test_gradcheck_and_gradgradcheck():
    g = torch.Generator().manual_seed(1)
    img = torch.randn([1, 2, 3, 3], generator=g, dtype=torch.float64, requires_grad=True)
    grid = (torch.rand([1, 2, 2, 2], generator=g, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    assert torch.autograd.gradcheck(grid_sample_gradfix.grid_sample, [img, grid])
    assert torch.autograd.gradgradcheck(grid_sample_gradfix.grid_sample, [img, grid])

#----------------------------------------------------------------------------

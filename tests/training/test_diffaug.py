"""Tests of training/diffaug.py: each DiffAugment op against an explicit per-pixel reference or the invariant
that defines it, the channels-last path against the channels-first path, and gradients by gradcheck."""

import pickle

import numpy as np
import pytest
import torch

import dnnlib
from training import diffaug

#----------------------------------------------------------------------------

def _translate_reference(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    # out[c, i, j] = x[c, i + dy, j + dx], zero where that pixel lies outside the image.
    C, H, W = x.shape
    out = np.zeros_like(x)
    for i in range(H):
        for j in range(W):
            if 0 <= i + dy < H and 0 <= j + dx < W:
                out[:, i, j] = x[:, i + dy, j + dx]
    return out

def _cutout_reference(H: int, W: int, cy: int, cx: int, size_h: int, size_w: int) -> np.ndarray:
    mask = np.ones([H, W], dtype=np.float32)
    for i in range(cy - size_h // 2, cy - size_h // 2 + size_h):
        for j in range(cx - size_w // 2, cx - size_w // 2 + size_w):
            if 0 <= i < H and 0 <= j < W:
                mask[i, j] = 0
    return mask

#----------------------------------------------------------------------------

@pytest.mark.parametrize('channels', [1, 3])
@pytest.mark.parametrize('policy', ['', 'color', 'translation', 'cutout', 'color,translation,cutout'])
def test_shape_and_dtype_preserved(channels, policy):
    torch.manual_seed(0)
    x = torch.randn([5, channels, 8, 12])
    y = diffaug.DiffAugment(x, policy=policy)
    assert y.shape == x.shape and y.dtype == x.dtype

def test_empty_policy_is_identity():
    x = torch.randn([3, 3, 8, 8])
    assert torch.equal(diffaug.DiffAugment(x, policy=''), x)

def test_unknown_policy_raises_user_error():
    with pytest.raises(dnnlib.UserError, match='--diffaug_policy'):
        diffaug.DiffAugment(torch.zeros([1, 3, 4, 4]), policy='color,zoom')
    with pytest.raises(dnnlib.UserError, match='--diffaug_policy'):
        diffaug.DiffAugmentPipe(policy='flip')

def test_policy_composes_ops_in_order():
    # Color is brightness, saturation, contrast; the policy applies its groups in the order written.
    x = torch.randn([4, 3, 8, 8])
    torch.manual_seed(6)
    ref = diffaug.rand_cutout(diffaug.rand_translation(diffaug.rand_contrast(diffaug.rand_saturation(diffaug.rand_brightness(x)))))
    torch.manual_seed(6)
    assert torch.equal(diffaug.DiffAugment(x, policy='color,translation,cutout'), ref)
    torch.manual_seed(6)
    ref = diffaug.rand_contrast(diffaug.rand_saturation(diffaug.rand_brightness(diffaug.rand_cutout(x))))
    torch.manual_seed(6)
    assert torch.equal(diffaug.DiffAugment(x, policy='cutout,color'), ref)

def test_channels_last_matches_channels_first():
    x = torch.randn([4, 3, 8, 8])
    torch.manual_seed(7)
    ref = diffaug.DiffAugment(x, channels_first=True)
    torch.manual_seed(7)
    out = diffaug.DiffAugment(x.permute(0, 2, 3, 1), channels_first=False)
    assert torch.equal(out.permute(0, 3, 1, 2), ref)

#----------------------------------------------------------------------------

def test_brightness_adds_one_offset_per_sample():
    x = torch.randn([64, 3, 4, 4], dtype=torch.float64)
    d = diffaug.rand_brightness(x) - x
    offsets = d[:, 0, 0, 0]
    assert torch.allclose(d, offsets.reshape(-1, 1, 1, 1).expand_as(d), atol=1e-12)
    assert offsets.min() >= -0.5 and offsets.max() < 0.5
    assert offsets.std() > 0.1 # Independent per sample, not one offset for the batch.

def test_saturation_scales_deviation_from_channel_mean():
    x = torch.randn([64, 3, 4, 4], dtype=torch.float64)
    y = diffaug.rand_saturation(x)
    m = x.mean(dim=1, keepdim=True)
    assert torch.allclose(y.mean(dim=1, keepdim=True), m, atol=1e-12)
    k = ((y - m) * (x - m)).sum(dim=[1, 2, 3]) / (x - m).square().sum(dim=[1, 2, 3])
    assert torch.allclose(y, m + k.reshape(-1, 1, 1, 1) * (x - m), atol=1e-12)
    assert k.min() >= 0 and k.max() < 2 and k.std() > 0.2
    x1 = torch.randn([8, 1, 4, 4])
    assert torch.allclose(diffaug.rand_saturation(x1), x1) # One channel: nothing to saturate.

def test_contrast_scales_deviation_from_sample_mean():
    x = torch.randn([64, 3, 4, 4], dtype=torch.float64)
    y = diffaug.rand_contrast(x)
    m = x.mean(dim=[1, 2, 3], keepdim=True)
    assert torch.allclose(y.mean(dim=[1, 2, 3], keepdim=True), m, atol=1e-12)
    k = ((y - m) * (x - m)).sum(dim=[1, 2, 3]) / (x - m).square().sum(dim=[1, 2, 3])
    assert torch.allclose(y, m + k.reshape(-1, 1, 1, 1) * (x - m), atol=1e-12)
    assert k.min() >= 0.5 and k.max() < 1.5 and k.std() > 0.1

#----------------------------------------------------------------------------

def test_translate_matches_reference():
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal([6, 2, 5, 7]))
    dy = torch.tensor([0, 1, -2, 4, -5, 3])
    dx = torch.tensor([0, -1, 3, -6, 7, 0])
    out = diffaug.translate(x, dy, dx).numpy()
    for n in range(x.shape[0]):
        np.testing.assert_array_equal(out[n], _translate_reference(x[n].numpy(), int(dy[n]), int(dx[n])))
    assert torch.equal(diffaug.translate(x, torch.zeros(6, dtype=torch.int64), torch.zeros(6, dtype=torch.int64)), x)

def test_rand_translation_shift_range():
    # Pixels are unique and nonzero, so each output identifies its shift; with 16 px and ratio 1/8 it is within +-2.
    H, W, N = 16, 16, 400
    x = (torch.arange(H * W, dtype=torch.float32) + 1).reshape(1, 1, H, W).repeat(N, 1, 1, 1)
    torch.manual_seed(1)
    out = diffaug.rand_translation(x).numpy()
    references = {(dy, dx): _translate_reference(x[0].numpy(), dy, dx) for dy in range(-3, 4) for dx in range(-3, 4)}
    seen = set()
    for n in range(N):
        matches = [shift for shift, ref in references.items() if np.array_equal(out[n], ref)]
        assert len(matches) == 1 and max(abs(matches[0][0]), abs(matches[0][1])) <= 2
        seen.add(matches[0])
    assert len(seen) == 25 # Every shift in [-2, 2]^2 occurs.
    assert torch.equal(diffaug.rand_translation(x[:4], ratio=0), x[:4])

def test_rand_cutout_is_a_clipped_half_size_rectangle():
    H, W, N = 4, 5, 600
    x = torch.ones([N, 2, H, W])
    torch.manual_seed(2)
    out = diffaug.rand_cutout(x).numpy()
    size_h, size_w = 2, 3 # round(H / 2), round(W / 2)
    # Centers: rows 0..H for an even size (one beyond the last row too), columns 0..W-1 for an odd size.
    candidates = {(cy, cx): _cutout_reference(H, W, cy, cx, size_h, size_w) for cy in range(H + 1) for cx in range(W)}
    seen = set()
    for n in range(N):
        assert np.array_equal(out[n, 0], out[n, 1]) # Same mask on every channel.
        matches = [key for key, mask in candidates.items() if np.array_equal(out[n, 0], mask)]
        assert len(matches) == 1
        seen.add(matches[0])
    assert seen == set(candidates) # Every center occurs (25 of them, 600 draws).
    assert (candidates[(2, 2)] == 0).sum() == size_h * size_w

#----------------------------------------------------------------------------

@pytest.mark.parametrize('policy', ['color', 'translation', 'cutout', 'color,translation,cutout'])
def test_gradcheck(policy):
    # Reseeding inside the function makes the random draws identical at every evaluation of gradcheck.
    def fn(x):
        torch.manual_seed(3)
        return diffaug.DiffAugment(x, policy=policy)
    x = torch.randn([2, 3, 4, 4], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fn, [x])

def test_gradient_flows_one_channel():
    x = torch.randn([4, 1, 8, 8], requires_grad=True)
    diffaug.DiffAugment(x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0

def test_module_matches_function_and_pickles():
    pipe = diffaug.DiffAugmentPipe(policy='color,cutout')
    x = torch.randn([3, 3, 8, 8])
    torch.manual_seed(4)
    ref = diffaug.DiffAugment(x, policy='color,cutout')
    torch.manual_seed(4)
    assert torch.equal(pipe(x), ref)
    pipe2 = pickle.loads(pickle.dumps(pipe))
    torch.manual_seed(4)
    assert torch.equal(pipe2(x), ref)

#----------------------------------------------------------------------------

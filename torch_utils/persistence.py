"""Persistent classes: pickles of their instances carry the source code of the defining module, so a network
pickle loads and runs without the code it was trained with (only dnnlib and torch_utils must be importable).

Wire format (shared with StyleGAN2-ADA / StyleGAN3 / Diffusion-GAN, whose official pickles load here):
an instance reduces to `(torch_utils.persistence._reconstruct_persistent_obj, (meta,))` with
meta = dict(type='class', version=6, module_src=<module source>, class_name=<name>, state=<instance state>).
NVIDIA's releases and the three Diffusion-GAN forks write version 6 and accept nothing else; so do we, except that
we also read 4, which this project's own snapshots carried until the format version was corrected (same layout).
Unpickling executes module_src as a fresh module (once per distinct source), looks the class up in it and
restores the state into an instance created without calling __init__."""

import copy
import hashlib
import inspect
import io
import pickle
import sys
import types
from typing import Any, Callable, Dict

import dnnlib

#----------------------------------------------------------------------------

_version            = 6         # Wire format version; the official releases write and expect 6.
_legacy_versions    = (4,)      # Also read: this project's snapshots before the fix wrote 4, with the same layout.
_decorators         = set()     # Every class returned by persistent_class().
_orig_to_decorator  = dict()    # Undecorated class -> its persistent subclass, so that decorating is idempotent.
_import_hooks       = []        # Callables meta -> meta applied when unpickling, in registration order.
_module_to_src_dict = dict()    # Module object -> its source text.
_src_to_module_dict = dict()    # Source text -> module object built from it.

#----------------------------------------------------------------------------

def persistent_class(orig_class: type) -> type:
    """Class decorator: instances pickle together with the source of the module that defines orig_class.

    The returned subclass also records the constructor arguments (deep copies) as `init_args` / `init_kwargs`,
    so a network can be rebuilt with the same configuration from a pickle. Constraints: the class must be
    defined at the top level of an importable module whose source is available, and everything the instance
    stores must be picklable (checked right after __init__, where the error is easy to trace)."""
    if not isinstance(orig_class, type):
        raise TypeError(f'persistent_class: expected a class, got {type(orig_class).__name__}')
    if is_persistent(orig_class):
        return orig_class
    if orig_class in _orig_to_decorator: # E.g. a pickled source whose class lacks the decorator, loaded repeatedly.
        return _orig_to_decorator[orig_class]
    if orig_class.__module__ == '__main__':
        raise dnnlib.UserError(f'persistent_class: {orig_class.__name__} is defined in __main__; define persistent classes in an importable module file')
    if orig_class.__module__ not in sys.modules:
        raise dnnlib.UserError(f'persistent_class: module "{orig_class.__module__}" of {orig_class.__name__} is not in sys.modules')
    orig_module = sys.modules[orig_class.__module__]
    orig_module_src = _module_to_src(orig_module)

    class Decorator(orig_class):
        _orig_module_src = orig_module_src
        _orig_class_name = orig_class.__name__

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._init_args = copy.deepcopy(args)
            self._init_kwargs = copy.deepcopy(kwargs)
            if orig_class.__name__ not in orig_module.__dict__: # Unpickling looks the class up by name in the module.
                raise dnnlib.UserError(f'persistent_class: {orig_class.__name__} must be defined at the top level of module "{orig_module.__name__}"')
            _check_pickleable(self.__reduce__())

        @property
        def init_args(self) -> tuple:
            return copy.deepcopy(self._init_args)

        @property
        def init_kwargs(self) -> dnnlib.EasyDict:
            return dnnlib.EasyDict(copy.deepcopy(self._init_kwargs))

        def __reduce__(self):
            # Start from the default reduction so that the state is whatever plain pickling would store
            # (including a custom __getstate__), then route reconstruction through the module source.
            fields = list(super().__reduce__())
            fields += [None] * max(3 - len(fields), 0)
            if fields[0] is not _reconstruct_persistent_obj:
                meta = dict(type='class', version=_version, module_src=self._orig_module_src, class_name=self._orig_class_name, state=fields[2])
                fields[0] = _reconstruct_persistent_obj
                fields[1] = (meta,)
                fields[2] = None
            return tuple(fields)

    Decorator.__name__ = orig_class.__name__
    Decorator.__qualname__ = orig_class.__qualname__
    Decorator.__module__ = orig_class.__module__
    Decorator.__doc__ = orig_class.__doc__
    _decorators.add(Decorator)
    _orig_to_decorator[orig_class] = Decorator
    return Decorator

#----------------------------------------------------------------------------

def is_persistent(obj: Any) -> bool:
    """True if obj is a persistent class or an instance of one."""
    try:
        if obj in _decorators:
            return True
    except TypeError: # Unhashable objects cannot be classes.
        pass
    return type(obj) in _decorators

#----------------------------------------------------------------------------

def import_hook(hook: Callable[[dnnlib.EasyDict], dnnlib.EasyDict]) -> None:
    """Register a callable meta -> meta applied to every persistent object while unpickling, before its module
    source is executed; lets old pickles be patched (e.g. edit module_src or rename state entries)."""
    if not callable(hook):
        raise TypeError('import_hook: hook must be callable')
    _import_hooks.append(hook)

#----------------------------------------------------------------------------

def check_meta(meta: Dict[str, Any]) -> None:
    """Raise UserError unless meta is a persistent-class meta of a wire format version we read."""
    if meta.get('version') != _version and meta.get('version') not in _legacy_versions:
        raise dnnlib.UserError(f'Persistent object in pickle has format version {meta.get("version")}, expected {_version}')
    if meta.get('type') != 'class':
        raise dnnlib.UserError(f'Persistent object in pickle has type "{meta.get("type")}", expected "class"')

#----------------------------------------------------------------------------

def _reconstruct_persistent_obj(meta: Dict[str, Any]) -> Any:
    """Unpickling entry point referenced by name from every persistent pickle; do not rename."""
    meta = dnnlib.EasyDict(meta)
    if isinstance(meta.get('state'), dict):
        meta.state = dnnlib.EasyDict(meta.state)
    for hook in _import_hooks:
        meta = hook(meta)
        if meta is None:
            raise RuntimeError(f'persistence import hook {hook!r} returned None instead of the meta dict')

    check_meta(meta)

    module = _src_to_module(meta.module_src)
    if meta.class_name not in module.__dict__:
        raise dnnlib.UserError(f'Pickled module source does not define class "{meta.class_name}"')
    decorator_class = persistent_class(module.__dict__[meta.class_name])
    obj = decorator_class.__new__(decorator_class)
    if meta.state is not None:
        setstate = getattr(obj, '__setstate__', None)
        if callable(setstate):
            setstate(meta.state) # nn.Module.__setstate__ also fills in attributes that newer PyTorch versions added.
        else:
            obj.__dict__.update(meta.state)
    return obj

#----------------------------------------------------------------------------

def _module_to_src(module: types.ModuleType) -> str:
    """Source text of a module; modules rebuilt from a pickle return the source they were built from."""
    src = _module_to_src_dict.get(module, None)
    if src is None:
        try:
            src = inspect.getsource(module)
        except (OSError, TypeError) as e:
            raise dnnlib.UserError(f'persistent_class: cannot read the source of module "{module.__name__}" ({e})') from e
        _module_to_src_dict[module] = src
        _src_to_module_dict[src] = module
    return src

def _src_to_module(src: str) -> types.ModuleType:
    """Module built by executing src, created once per distinct source text and registered in sys.modules
    under a name derived from its hash (its classes must be findable there to pickle them again)."""
    module = _src_to_module_dict.get(src, None)
    if module is None:
        module_name = '_imported_module_' + hashlib.sha256(src.encode('utf-8')).hexdigest()[:32]
        module = types.ModuleType(module_name)
        sys.modules[module_name] = module
        _module_to_src_dict[module] = src
        _src_to_module_dict[src] = module
        try:
            exec(compile(src, f'<pickled source of {module_name}>', 'exec'), module.__dict__)
        except BaseException:
            del sys.modules[module_name]
            del _module_to_src_dict[module]
            del _src_to_module_dict[src]
            raise
    return module

#----------------------------------------------------------------------------

def _check_pickleable(obj: Any) -> None:
    """Raise if obj cannot be pickled; tensors, arrays and persistent objects are skipped (they always can)."""
    def strip(obj):
        if isinstance(obj, (list, tuple, set)):
            return [strip(x) for x in obj]
        if isinstance(obj, dict):
            return [[strip(k), strip(v)] for k, v in obj.items()]
        if isinstance(obj, (str, int, float, bool, bytes, bytearray)) or obj is None:
            return None
        if f'{type(obj).__module__}.{type(obj).__name__}' in ('numpy.ndarray', 'torch.Tensor', 'torch.nn.parameter.Parameter', 'torch.nn.parameter.Buffer'):
            return None
        if is_persistent(obj):
            return None # Checked by its own constructor.
        return obj
    with io.BytesIO() as f:
        pickle.dump(strip(obj), f)

#----------------------------------------------------------------------------

"""dnnlib: small framework-free utilities (attribute dicts, object construction by name, cached URL access)."""

from .util import EasyDict, UserError, make_cache_dir_path

"""Presets: configs/NAME.yaml as data. A preset is a GAN family's whole training configuration, so that train.py
and the training loop hold no branch on the family.

A preset file has
    base: NAME          (optional) another preset it starts from; dicts are merged key by key (a dict with another
                        class_name replaces the base's), the rest replaced
    family: NAME        the GAN family, written into snapshots and the run name
    knobs               top-level scalars and lists: the hyper-parameters (kimg, batch, gamma, ...); the command
                        line overrides some of them (--batch, --gamma, --kimg)
    networks:           name -> class_name and constructor kwargs of every trained network (G, D, a classifier...);
                        G_ema is the moving average of G
    optimizers:         name -> class_name and kwargs of each trained network's optimizer
    reg_intervals:      name -> lazy regularization interval in minibatches, null = regularization fused in
    loss:               class_name and kwargs of the loss, which declares the phases of each network
    diffusion:          the family's default training.diffusion.Diffusion kwargs (command-line options override);
                        `enabled: false` makes --no-diffusion the family's default (DifGAN), `enabled: never`
                        refuses --diffusion (DDPM, DDGAN: their own forward process)
    step_with:          name -> host network, for networks stepped in the host's main phases (InsGen's heads: D)
    momentum_copies:    name -> {network, momentum}: a copy following a network, given to the loss (InsGen's D_ema)
    companion_diffusions: name -> overrides of the diffusion options for a further diffusion given to the loss
                        (DuDGAN's diffusion_C: t_max, p_step, noise_sd_scale multiplying the noise)

An overlay (configs/overlays/NAME.yaml, switched on by a train.py option such as --insgen) is merged over a
preset in the same way; its `requires_family` names the family of the presets it applies to.

Any value may be an expression, a string starting with '=': arithmetic, comparisons, `a if cond else b`, and
min, max, int, float, round, abs, over the knobs and what train.py provides: res (training resolution), gpus,
num_images (the dataset's images, without x-flips) and mirror (x-flips on), and, in the sections, batch_gpu,
fp32, nhwc, bf16, diffusion (the adaptive diffusion on), transfer (True when --resume starts from another run's weights without its training state). StyleGAN2-ADA's 'auto' rules are written this way in auto.yaml.
A knob whose value is the string 'required' must be given on the command line."""

import ast
import inspect
import operator
import os
from typing import Any, Dict, Optional

import torch
import yaml

import dnnlib

#----------------------------------------------------------------------------

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'configs')
SECTIONS = ('networks', 'optimizers', 'reg_intervals', 'loss', 'diffusion', 'step_with', 'momentum_copies', 'companion_diffusions')
OVERLAY_DIR = os.path.join(CONFIG_DIR, 'overlays')
REQUIRED = 'required'

def preset_names() -> list:
    """Every --cfg choice: the files in configs/."""
    return sorted(os.path.splitext(f)[0] for f in os.listdir(CONFIG_DIR) if f.endswith('.yaml'))

def preset_path(name: str) -> str:
    return os.path.join(CONFIG_DIR, f'{name}.yaml')

#----------------------------------------------------------------------------

def _merge(base: dict, over: dict) -> dnnlib.EasyDict:
    """base overridden by over; nested dicts merged key by key, except that a dict naming another class_name
    replaces the base's (a family's own G keeps none of the kwargs of the G it replaces)."""
    merged = dnnlib.EasyDict(base)
    for key, value in over.items():
        old = merged.get(key)
        if isinstance(value, dict) and isinstance(old, dict) and value.get('class_name', old.get('class_name')) == old.get('class_name'):
            value = _merge(merged[key], value)
        elif isinstance(value, dict):
            value = _merge({}, value)
        merged[key] = value
    return merged

def _read_yaml(path: str) -> dict:
    try:
        with open(path, 'rt') as f:
            spec = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as err:
        raise dnnlib.UserError(f'{path}: cannot read the preset ({err})') from err
    if not isinstance(spec, dict):
        raise dnnlib.UserError(f'{path}: expected a mapping of preset entries')
    return spec

def load_preset(name: str, overlays: tuple = ()) -> dnnlib.EasyDict:
    """configs/NAME.yaml with its 'base' chain resolved, then the overlays (configs/overlays/OVERLAY.yaml) merged
    over it (unevaluated: expressions are still strings). PresetError when an overlay does not apply to the family."""
    spec = _read_yaml(preset_path(name))
    base = spec.pop('base', None)
    merged = load_preset(base) if base is not None else dnnlib.EasyDict()
    merged = _merge(merged, spec)
    for overlay in overlays:
        over = _read_yaml(os.path.join(OVERLAY_DIR, f'{overlay}.yaml'))
        family = over.pop('requires_family', None)
        if family is not None and merged.get('family') != family:
            users = [cfg for cfg in preset_names() if load_preset(cfg).get('family') == family]
            raise PresetError(f'--{overlay}: --cfg={name} is a {merged.get("family")} preset; {overlay} applies to the {family} presets ({", ".join(users)})')
        merged = _merge(merged, over)
    for section in SECTIONS:
        merged.setdefault(section, dnnlib.EasyDict())
    return merged

def knob_names(spec: dict) -> list:
    return [key for key in spec if key not in SECTIONS and key != 'family']

#----------------------------------------------------------------------------
# Expressions: a small arithmetic language, evaluated on the parsed syntax tree (no eval()).

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_}
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
            ast.Gt: operator.gt, ast.GtE: operator.ge}
_FUNCTIONS = dict(min=min, max=max, int=int, float=float, round=round, abs=abs)

def _eval_node(node: ast.AST, lookup) -> Any:
    if isinstance(node, ast.Expression):
        return _eval_node(node.body, lookup)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return lookup(node.id)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _BINARY[type(node.op)](_eval_node(node.left, lookup), _eval_node(node.right, lookup))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval_node(node.operand, lookup))
    if isinstance(node, ast.BoolOp):
        values = [_eval_node(value, lookup) for value in node.values]
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
        left = _eval_node(node.left, lookup)
        for op, right_node in zip(node.ops, node.comparators):
            right = _eval_node(right_node, lookup)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.IfExp):
        return _eval_node(node.body if _eval_node(node.test, lookup) else node.orelse, lookup)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS and not node.keywords:
        return _FUNCTIONS[node.func.id](*[_eval_node(arg, lookup) for arg in node.args])
    raise ValueError(f'"{ast.unparse(node)}" is not allowed (arithmetic, comparisons, if-else, {", ".join(_FUNCTIONS)})')

def evaluate_expression(expr: str, lookup) -> Any:
    """Value of an expression (without its leading '='); lookup(name) gives the value of a name."""
    try:
        tree = ast.parse(expr.strip(), mode='eval')
    except SyntaxError as err:
        raise ValueError(f'"{expr}" is not a valid expression ({err.msg})') from err
    return _eval_node(tree, lookup)

def is_expression(value: Any) -> bool:
    return isinstance(value, str) and value.startswith('=')

#----------------------------------------------------------------------------

class PresetError(dnnlib.UserError):
    pass

def resolve(spec: dict, cfg: str, provided: Dict[str, Any], overrides: Optional[Dict[str, Any]] = None, option_names: Optional[Dict[str, str]] = None,
            sections: bool = True) -> dnnlib.EasyDict:
    """Evaluate a loaded preset: knobs first (overrides replace their preset values), then every section (unless
    sections is False: the knobs alone, before the names only the sections may use are known).
    provided: names the expressions may use besides the knobs (res, gpus, ...). option_names: knob -> command-line
    option, for the message when a 'required' knob was not given. Raises PresetError naming the file and entry."""
    path = preset_path(cfg)
    overrides = overrides or {}
    option_names = option_names or {}
    knobs = {key: spec[key] for key in knob_names(spec)}
    for key, value in overrides.items():
        if key not in knobs:
            option = option_names.get(key, key)
            raise PresetError(f'{option}: --cfg={cfg} has no "{key}" setting ({path})')
        knobs[key] = value
    values = dict()
    pending = set()

    def lookup(name: str) -> Any:
        if name in values:
            return values[name]
        if name in knobs:
            if name in pending:
                raise ValueError(f'"{name}" refers to itself')
            value = knobs[name]
            if value == REQUIRED:
                raise PresetError(f'--cfg={cfg} requires {option_names.get(name, name)} (no default in {path})')
            if is_expression(value):
                pending.add(name)
                value = evaluate_expression(value[1:], lookup)
                pending.discard(name)
            values[name] = value
            return value
        if name in provided:
            return provided[name]
        raise ValueError(f'unknown name "{name}"')

    def evaluate(where: str, value: Any) -> Any:
        if isinstance(value, dict):
            return dnnlib.EasyDict({key: evaluate(f'{where}.{key}', item) for key, item in value.items()})
        if isinstance(value, list):
            return [evaluate(f'{where}[{i}]', item) for i, item in enumerate(value)]
        if not is_expression(value):
            return value
        try:
            return evaluate_expression(value[1:], lookup)
        except PresetError:
            raise
        except (ValueError, TypeError, ZeroDivisionError, OverflowError) as err:
            raise PresetError(f'{path}: {where}: {err}') from err

    result = dnnlib.EasyDict(family=spec.get('family'))
    for key in knobs:
        result[key] = evaluate(key, f'={key}')
    for section in SECTIONS if sections else []:
        result[section] = evaluate(section, spec[section])
    return result

#----------------------------------------------------------------------------

def class_names(spec: dict) -> list:
    """The class_name of every network of a preset (loaded; class names are never expressions)."""
    return [kwargs['class_name'] for kwargs in spec.networks.values()]

def overlay_names() -> list:
    """Every overlay: the files in configs/overlays/."""
    return sorted(os.path.splitext(f)[0] for f in os.listdir(OVERLAY_DIR) if f.endswith('.yaml'))

def network_classes() -> tuple:
    """The network classes of every preset and overlay: the only classes the safe snapshot format constructs."""
    specs = [load_preset(cfg) for cfg in preset_names()]
    specs += [dnnlib.EasyDict(networks=_read_yaml(os.path.join(OVERLAY_DIR, f'{name}.yaml')).get('networks', {})) for name in overlay_names()]
    return tuple(sorted({name for spec in specs for name in class_names(spec)}))

#----------------------------------------------------------------------------

def check_classes(preset: dict, cfg: str, common_kwargs: dict) -> None:
    """PresetError unless every class a resolved preset names exists and accepts its kwargs: the networks are built
    once on the CPU (a second or two at 1024 px), the loss and optimizers checked against their signatures, and
    a loss with a check_kwargs(kwargs, networks) against the networks (ValueError: the option is wrong)."""
    path = preset_path(cfg)
    def find(where: str, class_name: Any):
        try:
            return dnnlib.util.get_obj_by_name(class_name)
        except (ImportError, AttributeError, ValueError, TypeError, dnnlib.UserError) as err:
            raise PresetError(f'{path}: {where}: no class "{class_name}"') from err
    networks = {}
    for name, kwargs in preset.networks.items():
        cls = find(f'networks.{name}.class_name', kwargs.get('class_name'))
        init_kwargs = {key: value for key, value in kwargs.items() if key != 'class_name'}
        try:
            networks[name] = cls(**init_kwargs, **common_kwargs)
        except (TypeError, ValueError) as err:
            raise PresetError(f'{path}: networks.{name}: {err}') from err
    checks = [(f'optimizers.{name}', kwargs, dict(params=[torch.zeros([1])])) for name, kwargs in preset.optimizers.items()]
    checks += [('loss', preset.loss, dict(device=None, diffusion=None, **{name: None for name in [*preset.networks, *preset.momentum_copies, *preset.companion_diffusions]}))]
    for where, kwargs, runtime_kwargs in checks:
        cls = find(f'{where}.class_name', kwargs.get('class_name'))
        try:
            inspect.signature(cls).bind(**runtime_kwargs, **{key: value for key, value in kwargs.items() if key != 'class_name'})
        except TypeError as err:
            raise PresetError(f'{path}: {where}: {err} ({cls.__name__})') from err
        if hasattr(cls, 'check_kwargs'): # a loss whose options depend on the networks (DifGAN's eta on G's steps)
            try:
                cls.check_kwargs({key: value for key, value in kwargs.items() if key != 'class_name'}, networks)
            except ValueError as err:
                raise PresetError(f'{path}: {where}: {err}') from err
    unknown = set(preset.optimizers) ^ set(preset.networks)
    if unknown:
        raise PresetError(f'{path}: networks and optimizers must name the same networks (differ in {", ".join(sorted(unknown))})')
    for where, names in [('step_with', [*preset.step_with, *preset.step_with.values()]), ('momentum_copies', [spec.get('network') for spec in preset.momentum_copies.values()])]:
        unknown = [str(name) for name in names if name not in preset.networks]
        if unknown:
            raise PresetError(f'{path}: {where}: no network {", ".join(unknown)} in networks')

#----------------------------------------------------------------------------

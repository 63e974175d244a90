"""Validate a BasicSR options file before BasicSR runs it, so mistakes fail early with a message that names
the option and what is allowed (BasicSR itself fails late, deep in a dataloader, or silently ignores a key).

What a model reads is declared as data: BasicSR's own train keys below (per model class), a plugin model's
additions in its ``train_options`` and its own top-level sections in ``option_sections`` (``OptionSection``s; the
contract is ``effsr_core.basicsr.plugin_model.PluginModel``).
A plugin that changes BasicSR's training pipeline itself (not a model) declares the top-level section its pipeline
wrapper reads with ``register_pipeline_section``: it then applies to every model derived from the named BasicSR
model classes (e.g. ``multigrid`` for every video model). A model's rules that need the whole options file go in its
``PluginModel.check_options(opt, check_paths)`` classmethod (``check_paths`` False: read no file).
"""
from __future__ import annotations

import inspect
import os.path as osp
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from effsr_core.basicsr.dataset_section_check import check_dataset
from effsr_core.basicsr.plugin_model import declarations
from effsr_core.basicsr.schedulers import supported_schedulers
from effsr_core.options import (Option, OptionError, OptionSection, check_keys, did_you_mean, parameter_names,
                                unknown_choice)

#: Top-level keys BasicSR itself reads (besides ``network_*``).
BASICSR_TOP_LEVEL = ('name', 'model_type', 'scale', 'num_gpu', 'manual_seed', 'is_train', 'dist', 'rank',
                     'world_size', 'auto_resume', 'root_path', 'datasets', 'path', 'train', 'val', 'logger',
                     'dist_params', 'find_unused_parameters')

_NUMBER = dict(type=float)  # BasicSR casts these (``total_iter: !!float 3e5`` is common)
#: ``train:`` keys read by BasicSR's training loop and by each of its model classes (basicsr 1.4.2).
BASICSR_TRAIN_OPTIONS: dict[str, tuple[Option, ...]] = {
    'SRModel': (
        Option('total_iter', None, 'iterations to train', minimum=1, **_NUMBER),
        Option('warmup_iter', -1, 'linear warm-up iterations (-1: none)', minimum=-1, **_NUMBER),
        Option('optim_g', None, 'optimizer of network_g, e.g. {type: Adam, lr: 2.0e-4}', type=dict),
        Option('scheduler', None, 'LR scheduler, e.g. {type: CosineAnnealingRestartLR, ...}', type=dict,
               nullable=True),
        Option('ema_decay', 0.0, 'decay of the EMA copy of network_g (0: none)', minimum=0, maximum=1,
               exclusive_maximum=True),
        Option('pixel_opt', None, 'pixel loss, e.g. {type: L1Loss, loss_weight: 1.0}', type=dict, nullable=True),
        Option('perceptual_opt', None, 'perceptual loss', type=dict, nullable=True),
    ),
    'VideoBaseModel': (),
    'EDVRModel': (
        Option('dcn_lr_mul', 1.0, 'LR multiplier of the deformable convolutions', minimum=0),
        Option('tsa_iter', None, 'iterations that train only the TSA module', type=int, minimum=0, nullable=True),
    ),
    'VideoRecurrentModel': (
        Option('fix_flow', None, 'iterations with the optical-flow network frozen', type=int, minimum=0,
               nullable=True),
        Option('flow_lr_mul', 1.0, 'LR multiplier of the optical-flow network', minimum=0),
    ),
}


@dataclass(frozen=True)
class PipelineSection:
    """A top-level section read by a wrapper of BasicSR's training pipeline, for any model of the given bases.

    Args:
        section: the declared options.
        model_bases: names of the BasicSR model classes (or plugin models) it works with; subclasses included.
        check: ``check(opt, model_cls, check_paths)``, the rules that need the whole options file (raise
            ``OptionError``); it runs after every other check.
        schedulers: registered LR schedulers the wrapper makes available to those models; they need the section.
    """
    section: OptionSection
    model_bases: tuple[str, ...]
    check: Callable[[dict, type, bool], None] | None = None
    schedulers: tuple[str, ...] = ()

    def applies_to(self, model_cls: type) -> bool:
        return any(klass.__name__ in self.model_bases for klass in model_cls.__mro__)


#: Top-level sections read by pipeline wrappers, by name (``register_pipeline_section``).
PIPELINE_SECTIONS: dict[str, PipelineSection] = {}


def register_pipeline_section(entry: PipelineSection) -> None:
    """Declare a section a plugin's pipeline wrapper reads (idempotent for the same declaration)."""
    known = PIPELINE_SECTIONS.get(entry.section.name)
    if known is not None and known != entry:
        raise KeyError(f'pipeline section {entry.section.name!r} is already declared differently.')
    PIPELINE_SECTIONS[entry.section.name] = entry


def train_options(model_cls: type) -> OptionSection | None:
    """The ``train:`` keys ``model_cls`` reads, when every class it derives from declares them, else None."""
    from basicsr.models.base_model import BaseModel

    options: list[Option] = []
    for klass in model_cls.__mro__:
        if klass is BaseModel or not issubclass(klass, BaseModel):
            continue
        if klass.__name__ in BASICSR_TRAIN_OPTIONS and klass.__module__.startswith('basicsr.'):
            options += BASICSR_TRAIN_OPTIONS[klass.__name__]
        elif 'train_options' in vars(klass):
            options += klass.train_options.options
        else:
            return None  # a model whose reads are not declared: its unknown keys cannot be told from typos
    return OptionSection('train', f'train options of {model_cls.__name__}', tuple(options), nullable=False)


def plugin_sections() -> dict[str, dict[str, OptionSection]]:
    """Top-level sections declared by registered BasicSR models: {section: {model_type: declaration}}."""
    from basicsr.utils.registry import MODEL_REGISTRY

    sections: dict[str, dict[str, OptionSection]] = {}
    for name in MODEL_REGISTRY.keys():
        for section in declarations(MODEL_REGISTRY.get(name)).option_sections:
            sections.setdefault(section.name, {})[name] = section
    return sections


def check_basicsr_options(opt: dict, is_train: bool = True, check_paths: bool = True) -> None:
    """Check names against BasicSR's registries, plugin sections and train keys against their declarations,
    datasets against the data on disk, metrics against BasicSR's metric functions.

    ``check_paths=False`` skips everything that reads the disk (to check shipped configs).
    """
    from basicsr.utils.registry import ARCH_REGISTRY, LOSS_REGISTRY, MODEL_REGISTRY

    model_type = opt.get('model_type', 'SRModel')
    if model_type not in MODEL_REGISTRY:
        raise unknown_choice('model_type', model_type, MODEL_REGISTRY.keys())
    model_cls = MODEL_REGISTRY.get(model_type)
    _check_top_level(opt, model_type, model_cls)
    for key, value in opt.items():
        if key.startswith('network_') and isinstance(value, Mapping):
            arch = value.get('type')
            if arch not in ARCH_REGISTRY:
                raise unknown_choice(f'{key}.type', arch, ARCH_REGISTRY.keys())
            check_component_arguments(key, ARCH_REGISTRY.get(arch), value, 'arch')
    for phase, dataset in (opt.get('datasets') or {}).items():
        check_dataset(f'datasets.{phase}', dataset, opt.get('scale'), check_paths)
    if is_train:
        train = opt.get('train') or {}
        declared = train_options(model_cls)
        if declared is not None:
            declared.check(train, 'train')
        for key, value in train.items():
            if key.endswith('_opt') and isinstance(value, Mapping) and 'type' in value:
                if value['type'] not in LOSS_REGISTRY:
                    raise unknown_choice(f'train.{key}.type', value['type'], LOSS_REGISTRY.keys())
                check_component_arguments(f'train.{key}', LOSS_REGISTRY.get(value['type']), value, 'loss')
        _check_scheduler(opt, model_cls, (train.get('scheduler') or {}).get('type'))
        _check_warmup(train)
    if opt.get('val') is not None:
        _check_metrics(opt['val'])
    declarations(model_cls).check_options(opt, check_paths=check_paths)
    for name, entry in PIPELINE_SECTIONS.items():
        if opt.get(name) is not None and entry.check is not None:
            entry.check(opt, model_cls, check_paths)
    for key, value in (opt.get('path') or {}).items():  # last: reading checkpoints is the slowest check
        if check_paths and key.startswith('pretrain_network_') and value:
            if not osp.isfile(osp.expanduser(value)):
                raise OptionError(f'path.{key}: file {value!r} does not exist.')
            _check_pretrained(opt, key, osp.expanduser(value))


def check_component_arguments(option: str, cls: type, given: Mapping[str, Any], kind: str,
                              skip: tuple[str, ...] = ()) -> None:
    """The arguments ``given`` (``type`` aside) for the class an option names: unknown names refused with a
    did-you-mean by the constructor's signature (BasicSR would fail with a traceback once folders exist); the values
    of the plugins' own losses, which load nothing, by building one. Errors name the option path (``train.tf_opt``).
    """
    from effsr_core import registry

    arguments = {name: value for name, value in given.items() if name != 'type'}
    parameters = inspect.signature(cls.__init__).parameters.values()
    if not any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters):
        check_keys(option, arguments, [name for name in parameter_names(cls.__init__) if name not in skip])
    if kind == 'loss' and registry.components('loss').get(given['type']) is cls:
        try:
            cls(**arguments)
        except (TypeError, ValueError) as error:
            message = str(error)
            own = f'{cls.__name__}.'
            raise OptionError(f'{option}.{message[len(own):]}' if message.startswith(own)
                              else f'{option}: {message}') from None


def _check_pretrained(opt: Mapping[str, Any], key: str, path: str) -> None:
    """The checkpoint ``path.<key>`` names is read as BasicSR's (patched) ``load_network`` will read it (safely,
    ``param_key_*``, ``strict_load_*``) into its network built on the meta device (no memory, no weights): unsafe,
    unreadable or unfitting, it is refused naming the option, the file, then the key and both shapes."""
    import torch
    from basicsr.utils.registry import ARCH_REGISTRY

    from effsr_core.checkpoints import (CheckpointError, generator_state, load_file, load_weights,
                                        weights_reading_globals)

    label = key.removeprefix('pretrain_network_')
    network = opt.get(f'network_{label}')
    paths = opt.get('path') or {}
    try:
        checkpoint = load_file(path, allowed_globals=weights_reading_globals())
        param_key = paths.get(f'param_key_{label}', 'params')
        if isinstance(checkpoint, dict) and param_key not in checkpoint and 'params' in checkpoint:
            param_key = 'params'  # as BasicSR's load_network: no params_ema, use params
        try:
            state = generator_state(checkpoint, param_key)
        except CheckpointError as error:
            raise CheckpointError(f'{path}: {error}') from None
        if not isinstance(network, Mapping):
            return  # no network of that name: BasicSR will not load it either
        arguments = {name: value for name, value in network.items() if name != 'type'}
        try:
            with torch.device('meta'):
                model = ARCH_REGISTRY.get(network['type'])(**arguments)
        except Exception:  # noqa: BLE001  (a network that cannot be built on the meta device: built for real)
            model = ARCH_REGISTRY.get(network['type'])(**arguments)
        strict = paths.get(f'strict_load_{label}', True)
        with warnings.catch_warnings():  # loading into meta parameters is a no-op, which is the point here
            warnings.filterwarnings('ignore', message='.*copying from a non-meta parameter', category=UserWarning)
            load_weights(model, state, strict=strict, skip_mismatched_shapes=not strict, source=path)
    except CheckpointError as error:
        raise OptionError(f'path.{key}: {error}') from None


def _check_warmup(train: Mapping[str, Any]) -> None:
    """A warm-up at least as long as the training would end it below the configured learning rate."""
    warmup, total = train.get('warmup_iter', -1), train.get('total_iter')
    if isinstance(warmup, (int, float)) and isinstance(total, (int, float)) and warmup >= total > 0:
        raise OptionError(f'train.warmup_iter: {warmup:g} is not below train.total_iter ({total:g}); the run would end '
                          'inside the warm-up, never at the configured learning rate. Shorten the warm-up (-1: none).')


def _check_scheduler(opt: Mapping[str, Any], model_cls: type, scheduler: str | None) -> None:
    """The scheduler is one the model builds, or one a pipeline section present in ``opt`` provides."""
    provided = {name: entry for entry in PIPELINE_SECTIONS.values() if entry.applies_to(model_cls)
                for name in entry.schedulers}
    if scheduler is None:
        return
    allowed = tuple(dict.fromkeys((*supported_schedulers(model_cls), *provided)))
    if scheduler not in allowed:
        raise unknown_choice('train.scheduler.type', scheduler, allowed)
    if scheduler in provided and opt.get(provided[scheduler].section.name) is None:
        section = provided[scheduler].section.name
        raise OptionError(f'train.scheduler.type: {scheduler} takes its settings from the {section} section, which '
                          f'is missing; add a {section} section or choose another scheduler.')
    scheduler_cls = _scheduler_class(scheduler)
    if scheduler_cls is not None and scheduler not in provided:  # (a provided one reads its section, checked apart)
        check_component_arguments('train.scheduler', scheduler_cls, opt['train']['scheduler'], 'lr_scheduler',
                                  skip=('optimizer', 'last_epoch'))


def _scheduler_class(name: str) -> type | None:
    """The class BasicSR (``MultiStepLR`` is its ``MultiStepRestartLR``) or the registry builds for ``name``."""
    from basicsr.models import lr_scheduler

    from effsr_core import registry

    if name in ('MultiStepLR', 'MultiStepRestartLR'):
        return lr_scheduler.MultiStepRestartLR
    if name == 'CosineAnnealingRestartLR':
        return lr_scheduler.CosineAnnealingRestartLR
    return registry.components('lr_scheduler').get(name)


def _check_top_level(opt: Mapping[str, Any], model_type: str, model_cls: type) -> None:
    """Plugin sections are checked against their declaration; a section no model of this type reads, or a key
    that looks like a misspelt one, is refused (it would otherwise be silently ignored)."""
    sections = plugin_sections()
    own = {section.name: section for section in declarations(model_cls).option_sections}
    known = [*BASICSR_TOP_LEVEL, *sections, *PIPELINE_SECTIONS]
    for key, value in opt.items():
        if key in own:
            own[key].check(value, key)
        elif key in PIPELINE_SECTIONS:
            entry = PIPELINE_SECTIONS[key]
            if not entry.applies_to(model_cls):
                raise OptionError(f'{key}: this section is read for models derived from '
                                  f'{", ".join(entry.model_bases)}, not by {model_type}, which would ignore it. '
                                  'Change model_type or remove the section.')
            entry.section.check(value, key)
        elif key in sections:
            readers = ', '.join(sections[key])
            raise OptionError(f'{key}: this section is read by model_type {readers}, not by {model_type}, which '
                              'would ignore it. Change model_type or remove the section.')
        elif key not in BASICSR_TOP_LEVEL and not key.startswith('network_'):
            hint = did_you_mean([key], known)
            plugins = ', '.join([*sections, *PIPELINE_SECTIONS]) or 'nothing more'
            if hint or isinstance(value, Mapping):
                raise OptionError(f'{key}: unknown top-level key; BasicSR reads {", ".join(BASICSR_TOP_LEVEL)}, '
                                  f'network_*, and the plugins {plugins}.{hint}')


def _check_metrics(val: Mapping[str, Any]) -> None:
    """Metric functions exist in BasicSR and take the given arguments (else validation fails after inference)."""
    from basicsr.utils.registry import METRIC_REGISTRY

    for name, metric in (val.get('metrics') or {}).items():
        option = f'val.metrics.{name}'
        if not isinstance(metric, Mapping) or 'type' not in metric:
            raise OptionError(f'{option}: expected a mapping with a type, e.g. {{type: calculate_psnr, '
                              'crop_border: 4}}.')
        if metric['type'] not in METRIC_REGISTRY:
            raise unknown_choice(f'{option}.type', metric['type'], METRIC_REGISTRY.keys())
        function = METRIC_REGISTRY.get(metric['type'])
        named = parameter_names(function, skip=('img', 'img2'))
        arguments = {key: value for key, value in metric.items() if key not in ('type', 'better')}
        check_keys(option, arguments, named)  # BasicSR's metrics take **kwargs: a misspelt argument is ignored
        parameters = inspect.signature(function).parameters
        missing = [name for name in named if parameters[name].default is inspect.Parameter.empty
                   and name not in metric]
        if missing:
            raise OptionError(f'{option}: {metric["type"]} needs {", ".join(missing)}.')

"""Validate a BasicSR options file before BasicSR runs it, so mistakes fail early with a message that names
the option and what is allowed (BasicSR itself fails late, deep in a dataloader, or silently falls back)."""
from __future__ import annotations

import difflib
import os.path as osp
from typing import Any, Iterable, Mapping

BASICSR_SCHEDULERS = ('MultiStepLR', 'MultiStepRestartLR', 'CosineAnnealingRestartLR')


class OptionError(ValueError):
    """An option has a value that cannot work; the message names the option and the allowed values."""


def unknown_choice(option: str, value: Any, allowed: Iterable[str]) -> OptionError:
    """Error for a value outside ``allowed``, with the closest allowed names as a hint."""
    allowed = sorted(allowed)
    close = difflib.get_close_matches(str(value), allowed, n=3)
    hint = f' Did you mean {" or ".join(map(repr, close))}?' if close else ''
    return OptionError(f'{option}: {value!r} is not one of the allowed values ({", ".join(allowed)}).{hint}')


def check_keys(option: str, given: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """Reject keys of a plugin section that the plugin does not know (typos must not be ignored)."""
    allowed = set(allowed)
    for key in given:
        if key not in allowed:
            raise unknown_choice(f'{option}.{key}', key, allowed)


def check_basicsr_options(opt: dict, is_train: bool = True, check_paths: bool = True) -> None:
    """Check names against BasicSR's registries, dataset paths, patch size vs scale and plugin sections.

    ``check_paths=False`` skips the existence of dataset and checkpoint paths (to check shipped configs).
    """
    from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, MODEL_REGISTRY

    model_type = opt.get('model_type', 'SRModel')
    if model_type not in MODEL_REGISTRY._obj_map:
        raise unknown_choice('model_type', model_type, MODEL_REGISTRY._obj_map)
    for key, value in opt.items():
        if key.startswith('network_') and isinstance(value, Mapping):
            arch = value.get('type')
            if arch not in ARCH_REGISTRY._obj_map:
                raise unknown_choice(f'{key}.type', arch, ARCH_REGISTRY._obj_map)
    for phase, dataset in (opt.get('datasets') or {}).items():
        _check_dataset(f'datasets.{phase}', dataset, opt.get('scale'), DATASET_REGISTRY._obj_map, check_paths)
    for key, value in (opt.get('path') or {}).items():
        if check_paths and key.startswith('pretrain_network_') and value and not osp.isfile(osp.expanduser(value)):
            raise OptionError(f'path.{key}: file {value!r} does not exist.')
    if is_train:
        train = opt.get('train') or {}
        for key, value in train.items():
            if key.endswith('_opt') and isinstance(value, Mapping) and 'type' in value:
                if value['type'] not in LOSS_REGISTRY._obj_map:
                    raise unknown_choice(f'train.{key}.type', value['type'], LOSS_REGISTRY._obj_map)
        scheduler = (train.get('scheduler') or {}).get('type')
        model_cls = MODEL_REGISTRY.get(model_type)
        allowed = getattr(model_cls, 'supported_schedulers', BASICSR_SCHEDULERS)
        if scheduler is not None and scheduler not in allowed:
            raise unknown_choice('train.scheduler.type', scheduler, allowed)
    model_cls = MODEL_REGISTRY.get(model_type)
    if hasattr(model_cls, 'check_options'):
        model_cls.check_options(opt)


def _check_dataset(name: str, dataset: Mapping[str, Any], scale: int | None, registered: Iterable[str],
                   check_paths: bool) -> None:
    if dataset.get('type') not in registered:
        raise unknown_choice(f'{name}.type', dataset.get('type'), registered)
    for key, value in dataset.items():
        if check_paths and (key.startswith('dataroot_') or key == 'meta_info_file') and value is not None:
            if not osp.exists(osp.expanduser(value)):
                raise OptionError(f'{name}.{key}: path {value!r} does not exist (for the bundled offline data run '
                                  f'`python -m effsr_core.data.make_offline_data` first).')
    gt_size = dataset.get('gt_size')
    scale = dataset.get('scale', scale)
    if gt_size is not None and scale and gt_size % scale != 0:
        raise OptionError(f'{name}.gt_size: {gt_size} is not divisible by scale {scale}; '
                          f'use a multiple of {scale} (e.g. {gt_size - gt_size % scale or scale}).')

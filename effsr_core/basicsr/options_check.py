"""Validate a BasicSR options file before BasicSR runs it, so mistakes fail early with a message that names
the option and what is allowed (BasicSR itself fails late, deep in a dataloader, or silently falls back)."""
from __future__ import annotations

import os.path as osp
from typing import Any, Iterable, Mapping

from effsr_core.basicsr.schedulers import supported_schedulers
from effsr_core.options import OptionError, unknown_choice


def check_basicsr_options(opt: dict, is_train: bool = True, check_paths: bool = True) -> None:
    """Check names against BasicSR's registries, dataset paths, patch size vs scale and plugin sections.

    ``check_paths=False`` skips the existence of dataset and checkpoint paths (to check shipped configs).
    """
    from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, MODEL_REGISTRY

    model_type = opt.get('model_type', 'SRModel')
    if model_type not in MODEL_REGISTRY:
        raise unknown_choice('model_type', model_type, MODEL_REGISTRY.keys())
    model_cls = MODEL_REGISTRY.get(model_type)
    for key, value in opt.items():
        if key.startswith('network_') and isinstance(value, Mapping):
            arch = value.get('type')
            if arch not in ARCH_REGISTRY:
                raise unknown_choice(f'{key}.type', arch, ARCH_REGISTRY.keys())
    for phase, dataset in (opt.get('datasets') or {}).items():
        _check_dataset(f'datasets.{phase}', dataset, opt.get('scale'), DATASET_REGISTRY.keys(), check_paths)
    for key, value in (opt.get('path') or {}).items():
        if check_paths and key.startswith('pretrain_network_') and value and not osp.isfile(osp.expanduser(value)):
            raise OptionError(f'path.{key}: file {value!r} does not exist.')
    if is_train:
        train = opt.get('train') or {}
        for key, value in train.items():
            if key.endswith('_opt') and isinstance(value, Mapping) and 'type' in value:
                if value['type'] not in LOSS_REGISTRY:
                    raise unknown_choice(f'train.{key}.type', value['type'], LOSS_REGISTRY.keys())
        scheduler = (train.get('scheduler') or {}).get('type')
        allowed = supported_schedulers(model_cls)
        if scheduler is not None and scheduler not in allowed:
            raise unknown_choice('train.scheduler.type', scheduler, allowed)
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

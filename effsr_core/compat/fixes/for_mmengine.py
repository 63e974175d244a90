"""Fixes for mmengine: safe loading of its checkpoints, shape checks, file names in errors, atomic writes; and the
start-up noise of the OpenMMLab stack it runs (one line for the optimizer's parameter groups, two deprecation
warnings of packages that mim, mmengine and mmagic import)."""
from __future__ import annotations

import functools
import logging
import os
import os.path as osp


from effsr_core.compat.fixes.marks import _is_patched, _mark


def mmengine_state_globals() -> list:
    """What mmengine checkpoints written here pickle beside tensors and containers: the message hub's
    ``HistoryBuffer`` (its statistics methods pickled as ``getattr(HistoryBuffer, name)``) and numpy arrays."""
    from mmengine.logging import HistoryBuffer

    from effsr_core.checkpoints import attribute_getter, numpy_globals

    statistics = attribute_getter({HistoryBuffer: lambda name: name in HistoryBuffer._statistics_methods})
    return [*numpy_globals(), HistoryBuffer, (statistics, 'builtins.getattr')]


def mmengine_safe_load(module) -> bool:
    """Local mmengine checkpoints (``load_from``, ``--resume``) are read with ``weights_only=True`` plus mmengine's
    own training-state classes, with one-line errors for unsafe or unreadable files."""
    loader_cls = module.CheckpointLoader
    current = loader_cls._schemes.get('')
    if current is not None and _is_patched(current):
        return False
    from effsr_core.checkpoints import load_file

    @_mark
    def load_from_local(filename, map_location):
        return load_file(osp.expanduser(filename), map_location=map_location,
                         allowed_globals=mmengine_state_globals())

    loader_cls.register_scheme(prefixes='', loader=load_from_local, force=True)
    module.load_from_local = load_from_local
    return True


def mmengine_shape_check(module) -> bool:
    """mmengine only warns when a weight's shape differs from the model's and goes on with a half-loaded model:
    refuse it with one line (missing / unexpected keys are still only listed, once, unless ``strict``)."""
    if _is_patched(module.load_state_dict):
        return False
    import logging

    from mmengine.logging import print_log
    from mmengine.model import is_model_wrapper

    from effsr_core.checkpoints import load_weights

    @_mark
    def load_state_dict(model, state_dict, strict=False, logger=None):
        report = load_weights(model.module if is_model_wrapper(model) else model, state_dict, strict=strict)
        if report:
            print_log(f'The checkpoint was loaded non-strictly: {report.summary()}.', logger=logger,
                      level=logging.WARNING)

    module.load_state_dict = load_state_dict
    return True


def mmengine_runner_checkpoint_name(module) -> bool:
    """A checkpoint that does not fit the model is named in the error (``Runner.load_checkpoint``)."""
    cls = module.Runner
    if _is_patched(cls.load_checkpoint):
        return False
    original = cls.load_checkpoint
    from effsr_core.checkpoints import CheckpointError

    @functools.wraps(original)
    def load_checkpoint(self, filename, *args, **kwargs):
        try:
            return original(self, filename, *args, **kwargs)
        except CheckpointError as error:
            message = str(error)
            if message.startswith(str(filename)):
                raise
            unnamed = message.startswith('checkpoint ')
            raise CheckpointError(f'{filename} {message[len("checkpoint "):]}' if unnamed else
                                  f'{filename}: {message}') from None

    cls.load_checkpoint = _mark(load_checkpoint)
    return True


def mmengine_atomic_put(module) -> bool:
    """mmengine writes checkpoints (and its other files) through ``LocalBackend.put``: write them atomically, so
    that a run killed while saving leaves the previous file intact and no partial one."""
    cls = module.LocalBackend
    if _is_patched(cls.put):
        return False
    from effsr_core.checkpoints import atomic_write

    @_mark
    def put(self, obj, filepath):
        os.makedirs(osp.dirname(osp.abspath(filepath)), exist_ok=True)
        with atomic_write(filepath) as f:
            f.write(obj)

    cls.put = put
    return True


#: How ``DefaultOptimWrapperConstructor.add_params`` starts its line for each option of each parameter.
PARAMWISE_PREFIX = 'paramwise_options -- '


def mmengine_paramwise_summary(module) -> bool:
    """``DefaultOptimWrapperConstructor`` logs one ``paramwise_options`` line per option of every parameter it sets
    apart (hundreds for a BasicVSR, again whenever the optimizer is rebuilt): log one line per build instead, how
    many parameters got which settings. Its other messages (skipped parameters) are unchanged."""
    cls = module.DefaultOptimWrapperConstructor
    if _is_patched(cls.__call__):
        return False
    original_call, print_log = cls.__call__, module.print_log
    builds: list[dict[str, dict[str, str]]] = []  # per build in progress (innermost last): parameter -> options

    @_mark
    def collecting_print_log(msg, logger=None, level=logging.INFO):
        if builds and isinstance(msg, str) and msg.startswith(PARAMWISE_PREFIX):
            name, _, option = msg[len(PARAMWISE_PREFIX):].partition(':')
            key, _, value = option.partition('=')
            builds[-1].setdefault(name, {})[key] = value
            return
        print_log(msg, logger=logger, level=level)

    @functools.wraps(original_call)
    def build(self, model):
        builds.append({})
        try:
            optim_wrapper = original_call(self, model)
        finally:
            options = builds.pop()
        if options:
            optimizer = getattr(optim_wrapper, 'optimizer', None)
            total = sum(len(group['params']) for group in optimizer.param_groups) if optimizer else None
            print_log(paramwise_summary(options, total), logger='current')
        return optim_wrapper

    module.print_log = collecting_print_log
    cls.__call__ = _mark(build)
    return True


def paramwise_summary(options: dict[str, dict[str, str]], total: int | None = None) -> str:
    """One line for the per-parameter options of a build: the parameters of each setting, counted, with the first
    one's name, e.g. ``paramwise_options -- 137 of 155 parameters set apart: 120 lr=2.5e-05 lr_mult=0.125
    (generator.spynet.basic_module.0.basic_module.0.weight, ...); 17 lr=0.02 lr_mult=100.0 (...)``."""
    by_setting: dict[tuple[tuple[str, str], ...], list[str]] = {}
    for name, setting in options.items():
        by_setting.setdefault(tuple(setting.items()), []).append(name)
    groups = '; '.join(f'{len(names)} {" ".join(f"{key}={value}" for key, value in setting)} '
                       f'({names[0]}{", ..." if len(names) > 1 else ""})' for setting, names in by_setting.items())
    counted = f'{len(options)} of {total}' if total is not None else str(len(options))
    return f'{PARAMWISE_PREFIX}{counted} parameters set apart: {groups}'

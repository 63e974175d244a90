"""Fixes for mmengine: safe loading of its checkpoints, shape checks, file names in errors, atomic writes."""
from __future__ import annotations

import functools
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

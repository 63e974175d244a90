"""Fixes for torchvision, mmcv-lite and numpy 2 on the CPU torch (see ``effsr_core.compat``)."""
from __future__ import annotations

import importlib
import importlib.machinery
import types


def tolerate_missing_torchvision_ops():
    """While torchvision imports, skip fake-kernel registration for ``torchvision::`` ops that do not exist."""
    import torch

    original = torch.library.register_fake
    skipped: list[str] = []

    def register_fake(op, *args, **kwargs):
        if isinstance(op, str) and op.startswith('torchvision::') and not _op_exists(torch, op):
            skipped.append(op)
            return args[0] if args and callable(args[0]) else (lambda func: func)
        return original(op, *args, **kwargs)

    torch.library.register_fake = register_fake
    return original, skipped


def restore_register_fake(token) -> bool:
    import torch

    original, skipped = token
    torch.library.register_fake = original
    return bool(skipped)


def cpu_deform_conv2d(module) -> bool:
    """After ``torchvision.ops.deform_conv`` imports: a plain-PyTorch ``torchvision::deform_conv2d`` where the C++ op
    is missing (``effsr_core.compat.fixes.torchvision_ops``); nothing where torchvision's ops load."""
    from effsr_core.compat.fixes.torchvision_ops import register_deform_conv2d

    return register_deform_conv2d(module)


def _op_exists(torch, qualified_name: str) -> bool:
    namespace, name = qualified_name.split('::', 1)
    try:
        getattr(getattr(torch.ops, namespace), name.split('.')[0])
    except (AttributeError, RuntimeError):
        return False
    return True


def functional_tensor_alias(name: str):
    """``torchvision.transforms.functional_tensor`` was renamed ``_functional_tensor``."""
    return importlib.import_module('torchvision.transforms._functional_tensor')


class _MissingOp:
    def __init__(self, name):
        self.__name__ = name

    def __call__(self, *args, **kwargs):
        raise NotImplementedError(
            f'mmcv._ext.{self.__name__} needs the compiled mmcv ops, but only mmcv-lite is installed. '
            'Install full mmcv with: EFFSR_FULL_MMCV=1 bash scripts/setup_env.sh')


def mmcv_ext_stub(name: str):
    """A stand-in for ``mmcv._ext`` whose ops raise a clear error when called (not when imported)."""
    module = types.ModuleType(name, 'effsr_core stub: mmcv-lite has no compiled ops')
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)

    def __getattr__(attr):
        if attr.startswith('__'):
            raise AttributeError(attr)
        return _MissingOp(attr)

    module.__getattr__ = __getattr__
    return module


def numpy_bool8() -> bool:
    import numpy as np

    if hasattr(np, 'bool8'):
        return False
    np.bool8 = np.bool_
    return True

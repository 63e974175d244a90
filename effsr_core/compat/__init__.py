"""Environment fixes that let BasicSR 1.4.2 and MMagic 1.2.0 run on torch 2.13 (CPU), in one place.

Each fix is tied to the import of one module and is applied by an import hook just before (or just after)
that module executes, so it costs nothing until the module is used and never touches installed files:

========================  ==========================================  ===========================================
fix                       trigger                                     does nothing when
========================  ==========================================  ===========================================
torchvision_missing_ops   ``import torchvision`` (around)             the torchvision C++ ops are registered
functional_tensor_alias   ``import torchvision.transforms.            torchvision still ships that module
                          functional_tensor``
mmcv_ext_stub             ``import mmcv._ext``                        full mmcv (compiled ops) is installed
numpy_bool8               ``import mmagic`` (before)                  numpy still has ``bool8``
mmengine_trusted_load     ``import mmengine.runner.checkpoint``       torch.load does not default to
                          (after)                                     ``weights_only=True``
basicsr_resume_state      ``import basicsr.train`` (after)            CUDA is present and torch.load does not
                                                                      default to ``weights_only=True``
basicsr_video_validation  ``import basicsr.models.video_*_model``     the model runs on a CUDA device
                          (after)
basicsr_cpu_distributed   ``import basicsr.utils.dist_util`` and      CUDA is present
                          ``basicsr.models.base_model`` (after)
========================  ==========================================  ===========================================

``install()`` adds the hook (idempotent). The set-up script also writes a ``.pth`` start-up file into the
virtual environment so that programs which import MMagic before any plugin code runs (``mim train``,
MMagic's ``tools/train.py``) are covered too: ``python -m effsr_core.compat install-hook``.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from dataclasses import dataclass, field
from typing import Callable

from effsr_core.compat import fixes

__all__ = ['install', 'uninstall', 'FIXES', 'applied_fixes']


@dataclass(frozen=True)
class Fix:
    """One environment fix bound to the import of ``target``.

    ``when`` is ``'around'`` (``before`` runs before the module executes and ``after`` once it has),
    ``'after'`` (``after(module)`` patches the executed module) or ``'substitute'`` (``substitute(name)``
    returns a replacement module, used only when the real module cannot be found).
    """
    name: str
    target: str
    when: str
    before: Callable[[], object] | None = None
    after: Callable[..., None] | None = None
    substitute: Callable[[str], object] | None = None
    doc: str = field(default='', compare=False)


FIXES: tuple[Fix, ...] = (
    Fix('torchvision_missing_ops', 'torchvision', 'around',
        before=fixes.tolerate_missing_torchvision_ops, after=fixes.restore_register_fake,
        doc='torchvision 0.28 is a CUDA build; its C++ ops are absent on the CPU torch, so registering '
            'their fake kernels raises during import (pytorch/vision#9085).'),
    Fix('functional_tensor_alias', 'torchvision.transforms.functional_tensor', 'substitute',
        substitute=fixes.functional_tensor_alias,
        doc='BasicSR 1.4.2 imports torchvision.transforms.functional_tensor, renamed _functional_tensor.'),
    Fix('mmcv_ext_stub', 'mmcv._ext', 'substitute', substitute=fixes.mmcv_ext_stub,
        doc='mmcv-lite has no compiled ops, but mmagic imports mmcv.ops at module level.'),
    Fix('numpy_bool8', 'mmagic', 'around', before=fixes.numpy_bool8,
        doc='mmagic 1.2.0 uses np.bool8, removed in numpy 2.'),
    Fix('mmengine_trusted_load', 'mmengine.runner.checkpoint', 'after', after=fixes.mmengine_trusted_load,
        doc='mmengine checkpoints pickle training state (HistoryBuffer...), refused by weights_only loading.'),
    Fix('basicsr_resume_state', 'basicsr.train', 'after', after=fixes.basicsr_resume_state,
        doc='basicsr.train.load_resume_state calls torch.cuda.current_device() and loads with weights_only.'),
    Fix('basicsr_video_validation', 'basicsr.models.video_base_model', 'after',
        after=fixes.basicsr_video_validation,
        doc='Video validation allocates metrics on "cuda" and squeezes the shared lq tensor in place on CPU.'),
    Fix('basicsr_video_validation', 'basicsr.models.video_recurrent_model', 'after',
        after=fixes.basicsr_video_validation),
    Fix('basicsr_cpu_distributed', 'basicsr.utils.dist_util', 'after', after=fixes.basicsr_cpu_distributed_init,
        doc='BasicSR\'s pytorch launcher hard-codes nccl and torch.cuda.set_device.'),
    Fix('basicsr_cpu_distributed', 'basicsr.models.base_model', 'after', after=fixes.basicsr_cpu_model_to_device,
        doc='BasicSR wraps DistributedDataParallel with device_ids=[torch.cuda.current_device()].'),
)

_applied: list[str] = []


def applied_fixes() -> list[str]:
    """Names of the fixes that changed something in this process, in order."""
    return list(_applied)


def _record(fix: Fix, changed: object) -> None:
    if changed and fix.name not in _applied:
        _applied.append(fix.name)


class _FixingLoader(importlib.abc.Loader):
    """Wraps the real loader of a target module to run a fix around its execution."""

    def __init__(self, loader: importlib.abc.Loader, fix: Fix):
        self._loader = loader
        self._fix = fix

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        fix = self._fix
        if fix.when == 'after':
            self._loader.exec_module(module)
            _record(fix, fix.after(module))
            return
        token = fix.before() if fix.before else None
        try:
            self._loader.exec_module(module)
        finally:
            _record(fix, fix.after(token) if fix.after else token)

    def __getattr__(self, name):  # get_source, get_filename, is_package ... for inspect/linecache
        return getattr(self._loader, name)


class _SubstituteLoader(importlib.abc.Loader):
    def __init__(self, fix: Fix):
        self._fix = fix

    def create_module(self, spec):
        module = self._fix.substitute(spec.name)
        _record(self._fix, True)
        return module

    def exec_module(self, module):
        pass


class _FixFinder(importlib.abc.MetaPathFinder):
    """Meta-path finder that routes the target modules of ``FIXES`` through the fixing loaders."""

    def __init__(self, fixes: tuple[Fix, ...] = FIXES):
        self._by_target = {fix.target: fix for fix in fixes}  # one fix per module
        self._resolving: set[str] = set()

    def find_spec(self, fullname, path=None, target=None):
        fix = self._by_target.get(fullname)
        if fix is None or fullname in self._resolving:
            return None
        self._resolving.add(fullname)
        try:
            spec = self._real_spec(fullname, path, target)
        finally:
            self._resolving.discard(fullname)
        if fix.when == 'substitute':
            if spec is not None:  # the real module exists: nothing to fix
                return None
            return importlib.machinery.ModuleSpec(fullname, _SubstituteLoader(fix))
        if spec is None or spec.loader is None:
            return None
        spec.loader = _FixingLoader(spec.loader, fix)
        return spec

    def _real_spec(self, fullname, path, target):
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, 'find_spec'):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                return spec
        return None


_finder: _FixFinder | None = None


def install() -> None:
    """Install the import hook (idempotent) and patch targets that are already imported."""
    global _finder
    if _finder is None or _finder not in sys.meta_path:
        _finder = _FixFinder()
        sys.meta_path.insert(0, _finder)
    for fix in FIXES:
        module = sys.modules.get(fix.target)
        if module is not None and fix.when == 'after':
            _record(fix, fix.after(module))


def uninstall() -> None:
    """Remove the import hook (patches already applied stay; they are idempotent and narrow)."""
    global _finder
    if _finder is not None and _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
    _finder = None

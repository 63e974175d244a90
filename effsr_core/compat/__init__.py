"""Environment fixes that let BasicSR 1.4.2 and MMagic 1.2.0 run on torch 2.13 (CPU), in one place.

Each fix is tied to the import of one module and is applied by an import hook just before (or just after)
that module executes, so it costs nothing until the module is used and never touches installed files:

========================  ==========================================  ===========================================
fix                       trigger                                     does nothing when
========================  ==========================================  ===========================================
torchvision_missing_ops   ``import torchvision`` (around)             the torchvision C++ ops are registered
torchvision_deform_conv   ``import torchvision.ops.deform_conv``      the torchvision C++ ops are registered
                          (after)
functional_tensor_alias   ``import torchvision.transforms.            torchvision still ships that module
                          functional_tensor``
mmcv_ext_stub             ``import mmcv._ext``                        full mmcv (compiled ops) is installed
numpy_bool8               ``import mmagic`` (before)                  numpy still has ``bool8``
mmengine_safe_load        ``import mmengine.runner.checkpoint``       (always applied: safe loading)
                          (after)
mmengine_shape_check      ``import mmengine.runner.checkpoint``       every checkpoint fits its model
                          (after)
mmengine_checkpoint_name  ``import mmengine.runner.runner`` (after)   every checkpoint fits its model
mmengine_atomic_save      ``import mmengine.fileio.backends.          no run is interrupted while saving
                          local_backend`` (after)
mmengine_paramwise_       ``import mmengine.optim.optimizer.          the optimizer has no ``paramwise_cfg``
summary                   default_constructor`` (after)
pkg_resources_            ``import pkg_resources`` (before)           setuptools does not warn (< 81); a filter
deprecation                                                           of that one message
diffusers_pytree_         ``import diffusers.utils.outputs``          diffusers uses the public pytree API; a
deprecation               (before)                                    filter of that message from that module
basicsr_resume_state      ``import basicsr.train`` (after)            (always applied: safe loading; CUDA is
                                                                      used when present)
basicsr_checkpoints       ``import basicsr.models.base_model``        (always applied: safe loading, atomic
                          (after)                                     saving)
basicsr_video_validation  ``import basicsr.models.video_*_model``     the model runs on a CUDA device
                          (after)
basicsr_nondist_          ``import basicsr.models.video_base_model``  (always applied: the warning is false
validation                (after)                                     wherever validation runs)
basicsr_cpu_distributed   ``import basicsr.utils.dist_util`` and      CUDA is present
                          ``basicsr.models.base_model`` (after)
basicsr_spynet_small      ``import basicsr.archs.spynet_arch``        (always applied: flows are bit-identical
                          (after)                                     wherever the original works, > 32 px)
mim_refused_run           ``import mim.cli`` (after)                  the child ran or failed otherwise
========================  ==========================================  ===========================================

Checkpoint loading is safe by default: every file is unpickled with ``weights_only=True``, allowing only what the
toolboxes' own training states hold (``fixes.basicsr_state_globals``, ``fixes.mmengine_state_globals``; reading
weights alone uses ``effsr_core.checkpoints.weights_reading_globals``). A file that would import anything else is
refused with one line naming it. The one opt-in to full (code-running) unpickling, for files you trust, is the
environment variable ``EFFSR_TRUST_CHECKPOINTS=1``.

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
    Fix('torchvision_deform_conv', 'torchvision.ops.deform_conv', 'after', after=fixes.cpu_deform_conv2d,
        doc='Without torchvision\'s C++ ops, deform_conv2d raises "Couldn\'t load custom C++ ops" (BasicSR\'s '
            'EDVR / IconVSR DCNv2Pack): define torchvision::deform_conv2d in plain PyTorch (bilinear sampling, '
            'autograd backward) and let torchvision.ops.deform_conv2d call it; the other ops stay missing.'),
    Fix('functional_tensor_alias', 'torchvision.transforms.functional_tensor', 'substitute',
        substitute=fixes.functional_tensor_alias,
        doc='BasicSR 1.4.2 imports torchvision.transforms.functional_tensor, renamed _functional_tensor.'),
    Fix('mmcv_ext_stub', 'mmcv._ext', 'substitute', substitute=fixes.mmcv_ext_stub,
        doc='mmcv-lite has no compiled ops, but mmagic imports mmcv.ops at module level.'),
    Fix('numpy_bool8', 'mmagic', 'around', before=fixes.numpy_bool8,
        doc='mmagic 1.2.0 uses np.bool8, removed in numpy 2.'),
    Fix('mmengine_safe_load', 'mmengine.runner.checkpoint', 'after', after=fixes.mmengine_safe_load,
        doc='mmengine checkpoints pickle training state (HistoryBuffer...): allow exactly those classes, '
            'never full unpickling (unless EFFSR_TRUST_CHECKPOINTS=1).'),
    Fix('mmengine_shape_check', 'mmengine.runner.checkpoint', 'after', after=fixes.mmengine_shape_check,
        doc='mmengine only warns about a weight of another shape and keeps a half-loaded model.'),
    Fix('mmengine_checkpoint_name', 'mmengine.runner.runner', 'after',
        after=fixes.mmengine_runner_checkpoint_name,
        doc='Name the checkpoint file in the error when it does not fit the model.'),
    Fix('mmengine_atomic_save', 'mmengine.fileio.backends.local_backend', 'after', after=fixes.mmengine_atomic_put,
        doc='mmengine writes checkpoints in place: a run killed while saving leaves a truncated file.'),
    Fix('mmengine_paramwise_summary', 'mmengine.optim.optimizer.default_constructor', 'after',
        after=fixes.mmengine_paramwise_summary,
        doc='DefaultOptimWrapperConstructor logs a line per option of each parameter of a paramwise_cfg '
            '(~275 per SSL run, again at pruning).'),
    Fix('pkg_resources_deprecation', 'pkg_resources', 'around', before=fixes.pkg_resources_deprecation,
        doc='setuptools 81 warns on importing pkg_resources, which mim and mmengine still use.'),
    Fix('diffusers_pytree_deprecation', 'diffusers.utils.outputs', 'around',
        before=fixes.diffusers_pytree_deprecation,
        doc='diffusers 0.24 (imported by mmagic) calls torch.utils._pytree._register_pytree_node, deprecated.'),
    Fix('basicsr_resume_state', 'basicsr.train', 'after', after=fixes.basicsr_resume_state,
        doc='basicsr.train.load_resume_state calls torch.cuda.current_device(), cannot read its own states '
            'with weights_only (Counter), and auto_resume picks a truncated newest state.'),
    Fix('basicsr_checkpoints', 'basicsr.models.base_model', 'after', after=fixes.basicsr_checkpoints,
        doc='BaseModel.load_network: unsafe/truncated files and networks that do not fit fail with raw '
            'tracebacks; save_network / save_training_state write in place.'),
    Fix('basicsr_video_validation', 'basicsr.models.video_base_model', 'after',
        after=fixes.basicsr_video_validation,
        doc='Video validation allocates metrics on "cuda" and squeezes the shared lq tensor in place on CPU.'),
    Fix('basicsr_video_validation', 'basicsr.models.video_recurrent_model', 'after',
        after=fixes.basicsr_video_validation),
    Fix('basicsr_nondist_validation', 'basicsr.models.video_base_model', 'after',
        after=fixes.basicsr_nondist_validation,
        doc='BasicSR\'s video models warn "nondist_validation is not implemented" and then validate completely.'),
    Fix('basicsr_cpu_distributed', 'basicsr.utils.dist_util', 'after', after=fixes.basicsr_cpu_distributed_init,
        doc='BasicSR\'s pytorch launcher hard-codes nccl and torch.cuda.set_device.'),
    Fix('basicsr_cpu_distributed', 'basicsr.models.base_model', 'after', after=fixes.basicsr_cpu_model_to_device,
        doc='BasicSR wraps DistributedDataParallel with device_ids=[torch.cuda.current_device()].'),
    Fix('mim_refused_run', 'mim.cli', 'after', after=fixes.mim_refused_run,
        doc='mim train shows a CalledProcessError traceback after a child that refused its config in one line.'),
    Fix('basicsr_spynet_small', 'basicsr.archs.spynet_arch', 'after', after=fixes.basicsr_spynet_small_frames,
        doc='BasicSR\'s SpyNet fails on LR frames of 32 px or less (its pyramid top starts from a 0-px flow): '
            'multigrid\'s 32x32 stage.'),
)

_applied: list[str] = []


def applied_fixes() -> list[str]:
    """Names of the fixes that changed something in this process, in order."""
    return list(_applied)


def _record(fix: Fix, changed: object) -> None:
    if changed and fix.name not in _applied:
        _applied.append(fix.name)


class _FixingLoader(importlib.abc.Loader):
    """Wraps the real loader of a target module to run its fixes around its execution (in table order)."""

    def __init__(self, loader: importlib.abc.Loader, fixes: list[Fix]):
        self._loader = loader
        self._fixes = fixes

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        around = [fix for fix in self._fixes if fix.when == 'around']
        tokens = [fix.before() if fix.before else None for fix in around]
        try:
            self._loader.exec_module(module)
        finally:
            for fix, token in zip(around, tokens):
                _record(fix, fix.after(token) if fix.after else token)
        for fix in self._fixes:
            if fix.when == 'after':
                _record(fix, fix.after(module))

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
        self._by_target: dict[str, list[Fix]] = {}
        for fix in fixes:
            self._by_target.setdefault(fix.target, []).append(fix)
        self._resolving: set[str] = set()

    def find_spec(self, fullname, path=None, target=None):
        target_fixes = self._by_target.get(fullname)
        if target_fixes is None or fullname in self._resolving:
            return None
        self._resolving.add(fullname)
        try:
            spec = self._real_spec(fullname, path, target)
        finally:
            self._resolving.discard(fullname)
        if target_fixes[0].when == 'substitute':  # a substitute is the only fix of its module
            if spec is not None:  # the real module exists: nothing to fix
                return None
            return importlib.machinery.ModuleSpec(fullname, _SubstituteLoader(target_fixes[0]))
        if spec is None or spec.loader is None:
            return None
        spec.loader = _FixingLoader(spec.loader, target_fixes)
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

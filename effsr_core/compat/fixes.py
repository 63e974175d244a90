"""The individual environment fixes; ``effsr_core.compat`` decides when each one runs.

Every function is idempotent and returns a truthy value only when it changed something.
"""
from __future__ import annotations

import functools
import importlib
import importlib.machinery
import os
import os.path as osp
import types

_PATCHED = '__effsr_compat_patched__'


def _mark(func):
    setattr(func, _PATCHED, True)
    return func


def _is_patched(func) -> bool:
    return getattr(func, _PATCHED, False)


# --------------------------------------------------------------------------------------------- torch / numpy
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


def _torch_load_defaults_to_weights_only() -> bool:
    import torch

    major, minor = (int(part) for part in torch.__version__.split('.')[:2])
    return (major, minor) >= (2, 6) and os.environ.get('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD') != '1'


def load_trusted(path: str, map_location='cpu'):
    """Load a training state written by this machine's own runs (it holds pickled Python objects)."""
    import torch

    return torch.load(path, map_location=map_location, weights_only=False)


# ------------------------------------------------------------------------------------------------- mmengine
def mmengine_trusted_load(module) -> bool:
    """Local mmengine checkpoints (own training states) are loaded with ``weights_only=False``."""
    if not _torch_load_defaults_to_weights_only():
        return False
    loader_cls = module.CheckpointLoader
    current = loader_cls._schemes.get('')
    if current is not None and _is_patched(current):
        return False

    @_mark
    def load_from_local(filename, map_location):
        filename = osp.expanduser(filename)
        if not osp.isfile(filename):
            raise FileNotFoundError(f'{filename} can not be found.')
        return load_trusted(filename, map_location=map_location)

    loader_cls.register_scheme(prefixes='', loader=load_from_local, force=True)
    module.load_from_local = load_from_local
    return True


# -------------------------------------------------------------------------------------------------- BasicSR
def basicsr_resume_state(module) -> bool:
    """Resume BasicSR training states on CPU and with ``weights_only=False``."""
    import torch

    if torch.cuda.is_available() and not _torch_load_defaults_to_weights_only():
        return False
    if _is_patched(module.load_resume_state):
        return False
    from basicsr.utils import check_resume

    @_mark
    def load_resume_state(opt):
        resume_state_path = find_resume_state(opt)
        if resume_state_path is None:
            return None
        use_cuda = torch.cuda.is_available() and opt.get('num_gpu', 0) != 0
        map_location = f'cuda:{torch.cuda.current_device()}' if use_cuda else 'cpu'
        resume_state = load_trusted(resume_state_path, map_location=map_location)
        check_resume(opt, resume_state['iter'])
        return resume_state

    module.load_resume_state = load_resume_state
    return True


def find_resume_state(opt) -> str | None:
    """The training state to resume from: the newest one with ``auto_resume``, else ``path.resume_state``."""
    if opt.get('auto_resume'):
        state_dir = opt['path'].get('training_states') or osp.join('experiments', opt['name'], 'training_states')
        if osp.isdir(state_dir):
            iters = [int(name[:-len('.state')]) for name in os.listdir(state_dir)
                     if name.endswith('.state') and name[:-len('.state')].isdigit()]
            if iters:
                opt['path']['resume_state'] = osp.join(state_dir, f'{max(iters)}.state')
                return opt['path']['resume_state']
        return None
    return opt['path'].get('resume_state')


def basicsr_video_validation(module) -> bool:
    """Make ``dist_validation`` of BasicSR's video models work on a CPU device.

    The original allocates its metric table on ``'cuda'`` and, because ``tensor.to('cpu')`` returns the same
    tensor on CPU, its in-place ``squeeze_`` of the batch also shrinks ``self.lq``. On a CUDA device the
    original method runs untouched.
    """
    changed = False
    for cls_name in ('VideoBaseModel', 'VideoRecurrentModel'):
        cls = getattr(module, cls_name, None)
        if cls is None or 'dist_validation' not in vars(cls) or _is_patched(cls.dist_validation):
            continue
        cls.dist_validation = _cpu_safe_video_validation(cls.dist_validation)
        changed = True
    return changed


def _cpu_safe_video_validation(original):
    @functools.wraps(original)
    def dist_validation(self, dataloader, current_iter, tb_logger, save_img):
        if self.device.type == 'cuda':
            return original(self, dataloader, current_iter, tb_logger, save_img)
        import torch
        from collections import Counter

        if self.opt['val'].get('metrics') is not None and not hasattr(self, 'metric_results'):
            frames_per_folder = Counter(dataloader.dataset.data_info['folder'])
            self.metric_results = {
                folder: torch.zeros(num, len(self.opt['val']['metrics']), dtype=torch.float32, device=self.device)
                for folder, num in frames_per_folder.items()
            }
        feed_data = self.feed_data
        self.feed_data = lambda data: feed_data({k: v.clone() if torch.is_tensor(v) else v for k, v in data.items()})
        try:
            return original(self, dataloader, current_iter, tb_logger, save_img)
        finally:
            del self.feed_data  # back to the class method

    return _mark(dist_validation)


def basicsr_cpu_distributed_init(module) -> bool:
    """``--launcher pytorch`` without CUDA: use the gloo backend and skip ``torch.cuda.set_device``."""
    import torch

    if torch.cuda.is_available() or _is_patched(module._init_dist_pytorch):
        return False
    import torch.distributed as dist

    @_mark
    def _init_dist_pytorch(backend, **kwargs):
        dist.init_process_group(backend='gloo', **kwargs)

    module._init_dist_pytorch = _init_dist_pytorch
    return True


def basicsr_cpu_model_to_device(module) -> bool:
    """Distributed BasicSR models without CUDA: DistributedDataParallel over CPU tensors (no device_ids)."""
    import torch

    cls = module.BaseModel
    if torch.cuda.is_available() or _is_patched(cls.model_to_device):
        return False
    original = cls.model_to_device

    @functools.wraps(original)
    def model_to_device(self, net):
        if not self.opt.get('dist'):
            return original(self, net)
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(net.to(self.device),
                                       find_unused_parameters=self.opt.get('find_unused_parameters', False))

    cls.model_to_device = _mark(model_to_device)
    return True


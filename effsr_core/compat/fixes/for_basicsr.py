"""Fixes for BasicSR 1.4.2 on CPU: safe and resilient resume, checkpoints, video validation (and its false
warning), the pytorch launcher, SpyNet on small frames."""
from __future__ import annotations

import functools
import logging
import os
import os.path as osp
from collections import Counter


from effsr_core.compat.fixes.marks import _is_patched, _mark


#: Called with the options before a resume state is looked for (``effsr_core.basicsr`` adds what the plugin models'
#: declarations need, e.g. their frozen networks), so that the fix needs nothing above it.
BEFORE_RESUME: list = []


def basicsr_state_globals() -> list:
    """What BasicSR training states pickle beside tensors and containers: ``MultiStepRestartLR`` keeps its
    milestones in a ``collections.Counter``."""
    return [Counter]


def basicsr_resume_state(module) -> bool:
    """Resume BasicSR training states safely (``weights_only`` + ``basicsr_state_globals``), on CPU when there is
    no CUDA, and with ``auto_resume`` from the newest state that is readable together with its networks (after the
    ``BEFORE_RESUME`` steps)."""
    if _is_patched(module.load_resume_state):
        return False
    import torch
    from basicsr.utils import check_resume

    from effsr_core.checkpoints import load_file

    @_mark
    def load_resume_state(opt):
        for prepare in BEFORE_RESUME:
            prepare(opt)
        use_cuda = torch.cuda.is_available() and opt.get('num_gpu', 0) != 0
        map_location = f'cuda:{torch.cuda.current_device()}' if use_cuda else 'cpu'
        if opt.get('auto_resume'):
            found = latest_good_state(opt, map_location)
            if found is None:
                return None
            opt['path']['resume_state'], resume_state = found
        elif opt['path'].get('resume_state'):
            resume_state = load_file(opt['path']['resume_state'], map_location, basicsr_state_globals())
        else:
            return None
        check_resume(opt, resume_state['iter'])
        return resume_state

    module.load_resume_state = load_resume_state
    return True


def _resume_networks(opt, iteration: int) -> list[str]:
    """The network files ``check_resume`` will load for a state of ``iteration``."""
    ignored = opt['path'].get('ignore_resume_networks') or []
    return [osp.join(opt['path']['models'], f'net_{key.removeprefix("network_")}_{iteration}.pth')
            for key in opt if key.startswith('network_') and key not in ignored]


def latest_good_state(opt, map_location='cpu') -> tuple[str, dict] | None:
    """``auto_resume``: the newest training state (path, content) that loads, as do its network files; each newer
    one skipped (a run killed while saving) is named in a WARNING, on stderr and in the experiment's log file."""
    from effsr_core.checkpoints import CheckpointError, load_file, weights_reading_globals

    state_dir = opt['path'].get('training_states') or osp.join('experiments', opt['name'], 'training_states')
    if not osp.isdir(state_dir):
        return None
    iterations = sorted((int(name[:-len('.state')]) for name in os.listdir(state_dir)
                         if name.endswith('.state') and name[:-len('.state')].isdigit()), reverse=True)
    for iteration in iterations:
        path = osp.join(state_dir, f'{iteration}.state')
        try:
            state = load_file(path, map_location, basicsr_state_globals())
            for network in _resume_networks(opt, iteration):
                load_file(network, allowed_globals=weights_reading_globals())
        except (CheckpointError, FileNotFoundError) as error:
            logger = logging.getLogger('basicsr')
            if not any(isinstance(handler, _IntoTheExperimentLog) for handler in logger.handlers):
                logger.addHandler(_IntoTheExperimentLog(logger))
            logger.warning(f'auto_resume: skipping {path}: {error}')
            continue
        return path, state
    return None


class _IntoTheExperimentLog(logging.Handler):
    """A handler of BasicSR's logger for warnings given before the experiment's log file exists (BasicSR resumes
    first, then creates the folder and its log): it shows them on stderr meanwhile and writes them into the log file
    as soon as BasicSR adds it, then leaves."""

    def __init__(self, logger: logging.Logger):
        super().__init__()
        self.logger = logger
        self.held: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        files = [handler for handler in self.logger.handlers if isinstance(handler, logging.FileHandler)]
        if files:
            for held in self.held:
                for handler in files:
                    handler.handle(held)
            self.logger.removeHandler(self)
            return
        self.held.append(record)
        if all(handler is self for handler in self.logger.handlers):
            logging.lastResort.handle(record)  # what the logger does without a handler of its own


def basicsr_checkpoints(module) -> bool:
    """``BaseModel``: load networks safely, refusing with one line a checkpoint of another network (non-strict:
    listing what was not loaded, once), and save networks and training states atomically."""
    cls = module.BaseModel
    if _is_patched(cls.load_network):
        return False
    from basicsr.utils import get_root_logger
    from basicsr.utils.dist_util import master_only

    from effsr_core.checkpoints import (CheckpointError, generator_state, load_file, load_weights,
                                        weights_reading_globals)

    @_mark
    def load_network(self, net, load_path, strict=True, param_key='params'):
        net = self.get_bare_model(net)
        checkpoint = load_file(load_path, allowed_globals=weights_reading_globals())
        if isinstance(checkpoint, dict) and param_key is not None and param_key not in checkpoint \
                and 'params' in checkpoint:
            param_key = 'params'  # BasicSR: no params_ema, use params
        try:
            state = generator_state(checkpoint, param_key)
        except CheckpointError as error:
            raise CheckpointError(f'{load_path}: {error}') from None
        logger = get_root_logger()
        logger.info(f'Loading {type(net).__name__} model from {load_path}, with param key: [{param_key}].')
        report = load_weights(net, state, strict=strict, skip_mismatched_shapes=not strict, source=str(load_path))
        if report:
            logger.warning(f'Loaded {load_path} non-strictly into {type(net).__name__}: {report.summary()}.')

    @_mark
    def save_network(self, net, net_label, current_iter, param_key='params'):
        nets = net if isinstance(net, list) else [net]
        keys = param_key if isinstance(param_key, list) else [param_key]
        if len(nets) != len(keys):
            raise ValueError(f'save_network: {len(nets)} networks but {len(keys)} param keys.')
        content = {key: {name.removeprefix('module.'): value.cpu() if hasattr(value, 'cpu') else value
                         for name, value in self.get_bare_model(one).state_dict().items()}
                   for one, key in zip(nets, keys)}
        label = 'latest' if current_iter == -1 else current_iter
        _save_or_warn(content, osp.join(self.opt['path']['models'], f'{net_label}_{label}.pth'))

    @master_only
    def save_training_state(self, epoch, current_iter):
        if current_iter == -1:
            return
        state = {'epoch': epoch, 'iter': current_iter, 'optimizers': [o.state_dict() for o in self.optimizers],
                 'schedulers': [s.state_dict() for s in self.schedulers]}
        _save_or_warn(state, osp.join(self.opt['path']['training_states'], f'{current_iter}.state'))

    cls.load_network, cls.save_network = load_network, save_network
    cls.save_training_state = _mark(save_training_state)
    return True


def _save_or_warn(content, path: str) -> None:
    """Save atomically; like BasicSR, a failed save is logged and training goes on (the previous file stays)."""
    from basicsr.utils import get_root_logger

    from effsr_core.checkpoints import save_atomic

    try:
        save_atomic(content, path)
    except OSError as error:
        get_root_logger().warning(f'Could not save {path}: {error}')


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


def basicsr_nondist_validation(module) -> bool:
    """``VideoBaseModel.nondist_validation`` warns ``nondist_validation is not implemented`` and then runs
    ``dist_validation``, which validates a single process completely (it only gathers results when ``dist``):
    run it without that false warning."""
    cls = module.VideoBaseModel
    if _is_patched(cls.nondist_validation):
        return False

    @_mark
    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img):
        return self.dist_validation(dataloader, current_iter, tb_logger, save_img)

    cls.nondist_validation = nondist_validation
    return True


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


def basicsr_spynet_small_frames(module) -> bool:
    """BasicSR's ``SpyNet`` on frames of at most 32 px (multigrid's 32x32 LR stage).

    ``forward`` resizes frames to a multiple of 32, so a 32-px frame reaches 1 px at the top of the 6-level
    pyramid, and ``process`` starts there from a zero flow of half that size (0 px), which ``F.interpolate``
    refuses. The replacement starts the top level from a zero flow of the level's own size and refines the other
    levels exactly as before. Upsampling and padding a zero flow gives exact zeros, so wherever the original works
    the flows are bit-identical.
    """
    cls = module.SpyNet
    if _is_patched(cls.process):
        return False
    import torch
    from torch.nn import functional as F

    flow_warp = module.flow_warp

    @_mark
    def process(self, ref, supp):
        refs, supps = [self.preprocess(ref)], [self.preprocess(supp)]
        for _ in range(len(self.basic_module) - 1):
            refs.insert(0, F.avg_pool2d(refs[0], kernel_size=2, stride=2, count_include_pad=False))
            supps.insert(0, F.avg_pool2d(supps[0], kernel_size=2, stride=2, count_include_pad=False))
        flow = None
        for level, (ref_level, supp_level) in enumerate(zip(refs, supps)):
            height, width = ref_level.shape[2:]
            if flow is None:  # the top level: no coarser estimate
                flow = ref_level.new_zeros(ref_level.size(0), 2, height, width)
            else:
                flow = F.interpolate(flow, scale_factor=2, mode='bilinear', align_corners=True) * 2.0
                flow = F.pad(flow, [0, width - flow.size(3), 0, height - flow.size(2)], mode='replicate')
            warped = flow_warp(supp_level, flow.permute(0, 2, 3, 1), interp_mode='bilinear', padding_mode='border')
            flow = self.basic_module[level](torch.cat([ref_level, warped, flow], 1)) + flow
        return flow

    process.__wrapped__ = cls.process  # the original, for comparison
    cls.process = process
    return True

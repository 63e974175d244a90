"""A shorter validation set for BasicSR's recurrent video models, chosen in the options file.

BasicSR's ``VideoRecurrentTestDataset`` always feeds every frame of every clip of its ``meta_info_file``; a demo
that has to finish in minutes on a CPU wants one short clip instead. ``VideoRecurrentSubsetTestDataset`` takes the
same options plus two optional keys, and validates the same way (same names, metrics and logs)::

    val:
      name: REDS4                      # BasicSR's video test datasets accept Vid4 / REDS4 / REDSOfficial
      type: VideoRecurrentSubsetTestDataset
      ...                              # dataroot_gt, dataroot_lq, meta_info_file, cache_data: true, ... as usual
      clips: ['000']                   # only these clips of the meta_info file (default: all)
      max_frames: 20                   # only the first 20 frames of each clip (default: all)
"""
from __future__ import annotations

from basicsr.data.data_util import read_img_seq
from basicsr.data.video_test_dataset import VideoRecurrentTestDataset
from basicsr.utils import get_root_logger
from basicsr.utils.registry import DATASET_REGISTRY

from effsr_core.options import Option, OptionSection

SUBSET_OPTIONS = OptionSection('VideoRecurrentSubsetTestDataset', 'a shorter validation set', (
    Option('clips', None, 'only these clips of the meta_info file (default: all)', type=str, nullable=True,
           is_list=True),
    Option('max_frames', None, 'only the first frames of each clip (default: all)', type=int, minimum=1,
           nullable=True),
), where='BasicSR: `datasets.val` with `type: VideoRecurrentSubsetTestDataset`, beside its BasicSR keys')


@DATASET_REGISTRY.register()
class VideoRecurrentSubsetTestDataset(VideoRecurrentTestDataset):
    """``VideoRecurrentTestDataset`` restricted to ``clips`` and to the first ``max_frames`` frames of each."""

    extra_options = SUBSET_OPTIONS

    def __init__(self, opt):
        values = SUBSET_OPTIONS.check({key: opt[key] for key in SUBSET_OPTIONS.names if key in opt}, opt['name'])
        clips, max_frames = values['clips'], values['max_frames']
        cache_data = opt['cache_data']
        # List the frames only; the kept ones are read below (BasicSR would read every clip).
        super().__init__({**opt, 'cache_data': False})
        self.opt, self.cache_data = opt, cache_data
        if clips is not None:
            missing = sorted(set(map(str, clips)) - set(self.folders))
            if missing:
                raise ValueError(f'clips: {", ".join(missing)} not in the dataset ({", ".join(self.folders)}).')
        kept = [str(clip) for clip in clips] if clips is not None else self.folders
        lq_paths, gt_paths = {}, {}
        for folder in kept:
            lq_paths[folder] = self.imgs_lq[folder][:max_frames]
            gt_paths[folder] = self.imgs_gt[folder][:max_frames]
        half = opt['num_frame'] // 2
        self.data_info = {'lq_path': [], 'gt_path': [], 'folder': [], 'idx': [], 'border': []}
        for folder in kept:
            count = len(lq_paths[folder])
            self.data_info['lq_path'].extend(lq_paths[folder])
            self.data_info['gt_path'].extend(gt_paths[folder])
            self.data_info['folder'].extend([folder] * count)
            self.data_info['idx'].extend(f'{i}/{count}' for i in range(count))
            self.data_info['border'].extend(int(i < half or i >= count - half) for i in range(count))
        self.folders = sorted(kept)
        logger = get_root_logger()
        logger.info(f'{opt["name"]}: {len(kept)} clip(s), {len(self.data_info["gt_path"])} frames '
                    f'(clips {opt.get("clips", "all")}, max_frames {max_frames or "all"}).')
        if cache_data:
            self.imgs_lq = {folder: read_img_seq(lq_paths[folder]) for folder in kept}
            self.imgs_gt = {folder: read_img_seq(gt_paths[folder]) for folder in kept}
        else:
            self.imgs_lq, self.imgs_gt = lq_paths, gt_paths

"""The multigrid settings a BasicSR options file describes (``BasicSRMultigrid``): the run's one
``MultigridSettings``, resolved from the ``multigrid`` section, the training dataset and the model class, and read
by the train loader, the model's LR scheduler, the logs and the options check. Rebuilt from the options alone, so a
resumed run finds the same stages."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from basicsr.utils.registry import DATASET_REGISTRY

from effsr_core.basicsr.schedulers import schedule_offset
from effsr_core.options import OptionError
from multigrid_plugin.basicsr.datasets import FRAME_CONTROLS, FrameControl, frame_control
from multigrid_plugin.options import MULTIGRID, MultigridSettings, resolve
from multigrid_plugin.schedule import MultigridSchedule

SECTION = MULTIGRID.name
#: Where BasicSR keeps what the schedule needs, for messages.
OUTSIDE = {'total_iter': 'train.total_iter', 'patch_size': 'datasets.train.gt_size',
           'frames': 'datasets.train.num_frame'}


@dataclass(frozen=True)
class BasicSRMultigrid:
    """A BasicSR run's multigrid settings and the dataset's scale.

    The model's ``schedule_offset`` iterations (those before its LR schedule starts, e.g. SSL's regularisation)
    train at the dataset's configured shape; iteration ``offset + t`` then trains at the schedule's iteration
    ``t`` (``settings.training``).
    """
    settings: MultigridSettings
    scale: int

    @classmethod
    def from_options(cls, opt: Mapping[str, Any], model_cls: type) -> 'BasicSRMultigrid':
        """Raises ``OptionError`` naming the option when the section, the dataset or the length cannot work."""
        values = MULTIGRID.check(opt.get(SECTION), SECTION)
        dataset = opt['datasets']['train']
        control = dataset_frame_control(dataset)
        scale = int(dataset.get('scale', opt.get('scale')))
        settings = resolve(values, int(opt['train']['total_iter']), SECTION,
                           baseline_patch_size=dataset['gt_size'] // scale, baseline_frames=control.configured(dataset),
                           offset=schedule_offset(model_cls, opt), outside=OUTSIDE)
        return cls(settings, scale)

    @property
    def schedule(self) -> MultigridSchedule:
        return self.settings.schedule

    @property
    def offset(self) -> int:
        return self.settings.offset

    @property
    def configured(self) -> tuple[int, int]:
        """(LR patch size, frames) as the dataset options give them."""
        return self.settings.training.baseline

    def __call__(self, iteration: int) -> tuple[int, int, int]:
        """``(stage index, LR patch size, frames)`` of a 1-based training iteration; stage -1 before the schedule
        starts (the configured shape)."""
        return self.settings.training(iteration)

    def describe(self, iteration: int) -> str:
        """One log line: the stage of ``iteration`` and its shape."""
        stage, patch, frames = self(iteration)
        where = (f'stage {stage + 1}/{self.schedule.num_stages}' if stage >= 0 else
                 f'before the multigrid schedule (it starts after iteration {self.offset})')
        return (f'multigrid: iteration {iteration}: {where}, LR patch {patch}x{patch} (GT {patch * self.scale}), '
                f'{frames} frames')

    def __deepcopy__(self, memo: dict) -> 'BasicSRMultigrid':
        return self  # immutable


def dataset_frame_control(dataset: Mapping[str, Any]) -> FrameControl:
    """The frame control of the training dataset type, or ``OptionError`` naming ``datasets.train.type``."""
    dataset_type = dataset.get('type')
    control = frame_control(DATASET_REGISTRY.get(dataset_type)) if dataset_type in DATASET_REGISTRY else None
    if control is None:
        raise OptionError(f'datasets.train.type: multigrid training reads {dataset_type!r} at no other shape; it '
                          f'supports {", ".join(FRAME_CONTROLS)} and their subclasses.')
    return control

"""The behaviour a BasicSR model gains when its options have a ``multigrid`` section, mixed into whichever model
class ``model_type`` names (VideoRecurrentModel, EDVRModel, SSLPruningModel...), so no model class is written per
combination: ``MultigridLR`` takes its settings from the section, and the stage, shape and LR are logged.
"""
from __future__ import annotations

from typing import Any

from basicsr.utils import get_root_logger

from effsr_core.basicsr.schedulers import RegisteredSchedulers
from effsr_core.options import OptionError
from multigrid_plugin.basicsr.settings import BasicSRMultigrid
from multigrid_plugin.lr_schedule import MultigridLR

#: ``log_dict`` keys (printed every ``logger.print_freq`` iterations and written to TensorBoard).
LOG_KEYS = ('multigrid/stage', 'multigrid/patch', 'multigrid/frames')


class MultigridTraining:
    """Mixin put before a BasicSR model class (see ``multigrid_model_class``).

    * ``train.scheduler: {type: MultigridLR}`` is built from the run's settings (``multigrid``: the train loader
      wrapper's, when ``pipeline`` builds the model; otherwise resolved from ``opt``); BasicSR's own models gain
      registered schedulers through ``RegisteredSchedulers``;
    * at every stage change the stage, LR patch size, frames and LR go to BasicSR's root logger; the stage and the
      shape of the batch actually trained go into ``log_dict`` (the printed log and TensorBoard).
    """

    def __init__(self, opt: dict, multigrid: BasicSRMultigrid | None = None):
        self.multigrid = multigrid or BasicSRMultigrid.from_options(opt, type(self))
        self._logged_stage: tuple[int, int, int] | None = None
        self._batch_shape: tuple[int, int] | None = None
        super().__init__(opt)

    def scheduler_arguments(self, name: str, options: dict) -> dict:
        if name != MultigridLR.__name__:
            return super().scheduler_arguments(name, options)
        if options:
            raise OptionError(f'train.scheduler: {name} takes its settings from the multigrid section; move '
                              f'{", ".join(options)} there.')
        return {'settings': self.multigrid.settings}

    def feed_data(self, data: dict[str, Any]) -> None:
        super().feed_data(data)
        self._batch_shape = (int(self.lq.shape[-1]), int(self.lq.shape[1]))  # lq: (b, t, c, h, w)

    def optimize_parameters(self, current_iter: int) -> None:
        super().optimize_parameters(current_iter)  # may rebuild optimizers and schedulers (SSL's pruning)
        stage = self.multigrid(current_iter)
        if stage != self._logged_stage:
            self._logged_stage = stage
            lrs = ', '.join(f'{lr:.3e}' for lr in self.get_current_learning_rate())
            get_root_logger().info(f'{self.multigrid.describe(current_iter)}, lr {lrs}')
        patch, frames = self._batch_shape
        self.log_dict.update(zip(LOG_KEYS, (stage[0] + 1, patch, frames)))


_COMPOSED: dict[type, type] = {}


def multigrid_model_class(model_cls: type) -> type:
    """``model_cls`` with ``MultigridTraining`` (and ``RegisteredSchedulers`` if it lacks it), made once per class."""
    if issubclass(model_cls, MultigridTraining):
        return model_cls
    if model_cls not in _COMPOSED:
        mixins = ((MultigridTraining,) if issubclass(model_cls, RegisteredSchedulers)
                  else (MultigridTraining, RegisteredSchedulers))
        namespace = {'__module__': __name__, '__doc__': f'{model_cls.__name__} with multigrid training.'}
        _COMPOSED[model_cls] = type(f'Multigrid{model_cls.__name__}', (*mixins, model_cls), namespace)
    return _COMPOSED[model_cls]

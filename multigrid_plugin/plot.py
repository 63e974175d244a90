"""A picture of a multigrid schedule: LR patch size, frames and learning rate per iteration (framework-free)."""
from __future__ import annotations

from effsr_core.plotting import figure
from multigrid_plugin.lr_schedule import multigrid_lr
from multigrid_plugin.options import MultigridSettings
from multigrid_plugin.schedule import MultigridSchedule

MAX_POINTS = 2000  # per curve: iterations are sampled evenly, plus the first and last of every stage
#: The picture's file name in a run's folder (BasicSR's experiment folder, MMagic's work_dir).
PLOT_FILE = 'multigrid_schedule.png'


def plotted_iterations(schedule: MultigridSchedule) -> list[int]:
    """The 1-based iterations to draw: an even sample plus every stage's first and last."""
    step = max(1, schedule.total_iter // MAX_POINTS)
    ends = {i for stage in schedule.stages for i in (stage.first_iter, stage.last_iter)}
    return sorted(set(range(1, schedule.total_iter + 1, step)) | ends)


def plot_schedule(settings: MultigridSettings, png_path: str, base_lr: float | None = None) -> str:
    """Write a PNG of a run's LR patch size, frames and (with ``base_lr``) Eq. 1's LR per training iteration.

    The iterations before the schedule starts (``settings.offset``) are left out; the x axis counts training
    iterations. The file is replaced atomically. Returns ``png_path``.
    """
    schedule, offset = settings.schedule, settings.offset
    iterations = plotted_iterations(schedule)
    x = [offset + i for i in iterations]
    stages = [schedule.stage_at(i) for i in iterations]
    panels = [('LR patch size', [s.patch_size for s in stages]), ('frames', [s.frames for s in stages])]
    if base_lr is not None:
        panels.append(('learning rate', [multigrid_lr(schedule, i, base_lr, settings.eta_min, settings.warmup_iter,
                                                      settings.form, settings.spatial_lr_factors)
                                         for i in iterations]))
    with figure(png_path, len(panels), 1, sharex=True, figsize=(6, 1.8 * len(panels) + 0.6), dpi=120) as (_, axes):
        for ax, (label, values) in zip(axes, panels):
            ax.plot(x, values, drawstyle='steps-post' if label != 'learning rate' else 'default')
            ax.set_ylabel(label)
            for stage in schedule.stages[1:]:
                ax.axvline(offset + stage.first_iter, color='0.8', linewidth=0.8)
        axes[-1].set_xlabel('iteration')
        axes[0].set_title(f'Multigrid schedule: {schedule.num_stages} stages ({schedule.order}, {schedule.mode})')
    return png_path

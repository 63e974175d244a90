"""Multigrid VSR training (Lin et al., "Accelerating the Training of Video Super-Resolution Models").

Framework-free: ``schedule`` (``MultigridSchedule``: stage, LR patch size and frames as a pure function of the
iteration; ``DelayedSchedule``: the same seen from training iterations when it starts late), ``lr_schedule``
(Eq. 1's dynamic LR with warmup as the scheduler ``MultigridLR``, the linear scaling rule) and ``options`` (the
``multigrid`` option section, resolved once per run into the immutable ``MultigridSettings`` that the sampler,
the LR scheduler, the logs and the plot read). Declared in the ``effsr.plugins`` entry-point group.
"""
from multigrid_plugin import lr_schedule  # noqa: F401  (registers the LR scheduler MultigridLR)

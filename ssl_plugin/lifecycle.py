"""SSL's training lifecycle, written once for every toolbox.

select units → keep the teacher → regularise (growing α Σγ² on the selected factors, SpyNet frozen, LR held) →
prune and swap in the compact network → fine-tune (pixel loss + Temporal Finetuning); resume in any phase.

The lifecycle owns no training loop. A toolbox adapter calls it at the moments its loop offers — ``start`` before
the first iteration (fresh or resumed), ``needs_pruning`` / ``prune`` at the start of an iteration, ``losses`` in the
forward pass, ``after_step`` after the optimiser step — and does only what needs the toolbox: rebuilding the
optimiser, schedulers, EMA and DDP wrapper around the compact network, holding the LR, logging.
Iterations are 1-based, as in BasicSR.
"""
from __future__ import annotations

import copy
import os.path as osp
from typing import Any, Callable, Mapping

import torch
from torch import nn

from effsr_core.checkpoints import read_generator_state, save_atomic
from effsr_core.distributed import is_main_process
from effsr_core.networks import frozen
from effsr_core.options import OptionError
from ssl_plugin.pruning.curve import FactorCurve
from ssl_plugin.pruning.latency import open_latency_model, other_device, reachable
from ssl_plugin.pruning.config import PruningConfig
from ssl_plugin.pruning.pruner import StructuredPruner, broadcast_plan

TEACHER_FILE = 'pruning_start.pth'
CURVE_FILE = 'pruning_factors.csv'
Tensors = dict[str, torch.Tensor]


class SSLPruningLifecycle:
    """Drives a ``PrunableNetwork`` (e.g. ``SSLBasicVSR``) through the phases of one training run.

    Args:
        pruning: the ``pruning`` options (see ``PruningConfig``).
        teacher_path: where the teacher is kept (a resumed run reloads it from there), e.g. ``.../pruning_start.pth``.
        curve_path: CSV of the factor curve (a PNG is written beside it), e.g. ``.../pruning_factors.csv``.
        tf_loss: the Temporal Finetuning criterion used after pruning, or None.
        log: receives one-line progress messages.
    """

    def __init__(self, pruning: Mapping[str, Any] | None, teacher_path: str, curve_path: str,
                 tf_loss: nn.Module | None = None, log: Callable[[str], None] = print):
        self.config = PruningConfig.from_options(pruning)
        self.pruner = StructuredPruner(self.config)
        self.tf_loss = tf_loss
        self.teacher_path = teacher_path
        self.curve = FactorCurve(curve_path)
        self.log = log
        self._teacher: nn.Module | None = None
        self._device_checked = False

    @staticmethod
    def check_options(pruning: Mapping[str, Any] | None, total_iters: int | None, uses_tf: bool, fixes_flow: bool,
                      names: Mapping[str, str], network: Callable[[], nn.Module] | None = None) -> None:
        """Refuse a run that cannot work, before anything is built; ``names`` maps ``pruning``, ``total_iters``,
        ``tf`` and ``fix_flow`` to the option names of the toolbox (e.g. ``train.total_iter``). With a latency
        target, its backend and cost table are opened, and with ``network`` (builds the dense network) a target
        out of reach is refused too (the cost table measures what it lacks)."""
        config = PruningConfig.from_options(pruning, names['pruning'])
        if config.latency is not None:
            model = open_latency_model(config.latency, names['pruning'])
            if network is not None:
                net = network()
                reachable(net, StructuredPruner(config).groups(net), model, names['pruning'])
        if total_iters is not None and total_iters < config.prune_iter:
            raise OptionError(f'{names["total_iters"]} ({total_iters}) must exceed the {config.prune_iter - 1} '
                              f'regularisation iterations of {names["pruning"]}.regularization, leaving iterations '
                              'to fine-tune.')
        if fixes_flow:
            raise OptionError(f'{names["fix_flow"]} is not supported with SSL pruning: SpyNet is frozen while '
                              f'regularising ({names["pruning"]}.freeze_flow) and trained while fine-tuning.')
        if uses_tf and 'hidden' in config.units:
            raise OptionError(f'{names["tf"]}: Temporal Finetuning needs full-width hidden states; '
                              f'{names["pruning"]}.units contains "hidden" (ASSL aligned pruning). Remove one of them.')

    # ------------------------------------------------------------------------------------------ phases
    def phase(self, iteration: int, net: nn.Module) -> str:
        """'regularize' or 'finetune' at 1-based ``iteration``."""
        return self.config.phase(iteration, net)

    def start(self, net: nn.Module, next_iteration: int | None = None) -> bool:
        """Before the first iteration of a run (fresh or resumed). On a fresh start, select the units to prune
        (rank 0's choice on every rank) and keep the teacher. While regularising, freeze SpyNet
        (``freeze_flow``). Returns whether the run is in (or before) the regularisation phase, where the adapter
        holds the learning rate; ``next_iteration`` None means "not known yet" (before a resume is loaded)."""
        if net.plan is None and net.pending_plan is None:
            net.pending_plan = broadcast_plan(self.pruner.select(net))
            self._log_plan('selected for pruning', net, net.pending_plan)
            if self.tf_loss is not None:
                self._teacher = frozen(copy.deepcopy(net))
                if is_main_process():
                    save_atomic({'params': self._teacher.state_dict()}, self.teacher_path)
        regularising = net.plan is None and self.config.regularize and (
            next_iteration is None or next_iteration < self.config.prune_iter)
        if regularising and self.config.freeze_flow:
            net.spynet.requires_grad_(False)
        return regularising

    def needs_pruning(self, iteration: int, net: nn.Module) -> bool:
        """Whether ``net`` is to be pruned at ``iteration``; the first call of a run (a resumed one holds the
        checkpoint's plan by then) also names another device the plan's latency was predicted for."""
        if not self._device_checked:
            self._device_checked = True
            self.say_if_other_device(net)
        return net.plan is None and self.config.phase(iteration) == 'finetune'

    def say_if_other_device(self, net: nn.Module) -> None:
        """Log one line when the latency of ``net``'s plan (made or pending) was predicted for another device,
        thread count, backend or library version than this one; the plan is kept."""
        plan = net.plan or net.pending_plan
        record = None if plan is None else plan.extra.get('latency')
        difference = other_device(record)
        if difference:
            self.log(f'SSL: the plan\'s latency ({record["target"]}) was predicted for another device or '
                     f'version ({difference}); the plan is kept, its latency here may differ.')

    def prune(self, net: nn.Module, twins: tuple[nn.Module, ...] = ()) -> tuple[nn.Module, ...]:
        """The compact network for ``net``'s pending plan (SpyNet trainable again), and compact copies of
        ``twins`` (e.g. an EMA copy) with the same plan."""
        plan = net.pending_plan
        compact = self.pruner.prune(net, plan)
        compact.spynet.requires_grad_(True)
        self.curve.save_plot()
        self._log_plan('pruned', net, plan)
        return (compact, *(self.pruner.prune(twin, plan) for twin in twins))

    # ------------------------------------------------------------------------------------------ iterations
    def losses(self, net: nn.Module, lqs: torch.Tensor, gt: torch.Tensor, pixel_loss: Callable, iteration: int,
               forward: Callable | None = None) -> tuple[torch.Tensor, Tensors, Tensors]:
        """Forward ``net`` (through ``forward``, e.g. its DDP wrapper, when given) and return ``(output, losses,
        scalars)``: losses ``pix``, ``tf`` (fine-tuning with a TF criterion) and ``sir`` (sparsity regularisation),
        to be summed; scalars ``gamma_pruned``, ``gamma_kept`` (mean |γ| of the units to prune / to keep) and
        ``alpha`` while regularising, to be logged only."""
        phase = self.phase(iteration, net)
        use_tf = phase == 'finetune' and self.tf_loss is not None
        forward = forward or net
        if use_tf:
            output, hidden = forward(lqs, return_hidden=True)
        else:
            output = forward(lqs)
        losses = {'pix': pixel_loss(output, gt)}
        scalars = {}
        if use_tf:
            with torch.no_grad():
                _, teacher_hidden = self.teacher(net)(lqs, return_hidden=True)
            losses['tf'] = self.tf_loss(hidden, teacher_hidden)
        if phase == 'regularize':
            plan = net.pending_plan
            losses['sir'] = self.pruner.regularization_loss(net, plan, iteration)
            means = self.pruner.factor_means(net, plan)
            scalars = {'gamma_pruned': torch.tensor(means['pruned']), 'gamma_kept': torch.tensor(means['kept']),
                       'alpha': torch.tensor(self.config.regularization.alpha(iteration - 1))}
        return output, losses, scalars

    def after_step(self, net: nn.Module, iteration: int, every: int) -> None:
        """Record the factor curve (the paper's Fig. 6) every ``every`` iterations (and at the first) while
        regularising."""
        if self.phase(iteration, net) == 'regularize' and (iteration % every == 0 or iteration == 1):
            means = self.pruner.factor_means(net, net.pending_plan)
            self.curve.record(iteration, self.config.regularization.alpha(iteration - 1), means['pruned'],
                              means['kept'])

    # ------------------------------------------------------------------------------------------ teacher
    def teacher(self, net: nn.Module) -> nn.Module:
        """The frozen pretrained network, reloaded from ``pruning_start.pth`` after a resume."""
        if self._teacher is None:
            if not osp.isfile(self.teacher_path):
                raise FileNotFoundError(f'Temporal Finetuning needs the pretrained network saved at '
                                        f'{self.teacher_path} when this experiment started; it is missing '
                                        '(remove the TF loss or restart the experiment).')
            teacher = type(net)(**net.config)
            teacher.load_state_dict(read_generator_state(self.teacher_path, 'params'))
            self._teacher = frozen(teacher.to(next(net.parameters()).device))
        return self._teacher

    def _log_plan(self, what: str, net: nn.Module, plan) -> None:
        sizes = self.pruner.groups(net)
        c = self.config
        latency = plan.extra.get('latency')
        how = (f'ratio {c.ratio}, {c.selection}, round_to {c.round_to}' if latency is None else
               f'{latency["target"]}: predicted {latency["predicted_ms"]:.2f} ms per frame, '
               f'{latency["predicted_speedup"]:.2f}x the dense {latency["dense_ms"]:.2f} ms, found ratio '
               f'{latency["ratio"]:.4f}, {c.selection}')
        self.log(f'SSL {c.method}: {what}: keep {plan.kept_fraction(sizes):.3f} of {sum(sizes.values())} units in '
                 f'{len(sizes)} groups ({how}).')

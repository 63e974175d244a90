"""Framework-free pruning logic: importance, selection (Table 3 variants), regularisation, config, TF loss."""
import os

import pytest
import torch
import torch.multiprocessing as mp

from ssl_plugin.archs import SSLBasicVSR
from ssl_plugin.losses import TemporalFinetuneLoss
from ssl_plugin.pruning.config import PruningConfig
from ssl_plugin.pruning.curve import FactorCurve
from ssl_plugin.pruning.plan import PruningPlan
from ssl_plugin.pruning.pruner import StructuredPruner, broadcast_plan
from ssl_plugin.pruning.regularization import GrowingRegularization
from ssl_plugin.pruning.selection import select_kept as _select_kept


def select_kept(scores, ratio, selection='min_global', round_to=None, seed=0):
    """The selection through the checked settings, as every caller of the selection gets them."""
    return _select_kept(scores, PruningConfig(ratio=ratio, selection=selection, round_to=round_to, seed=seed))


def _net(seed=0, **kwargs):
    torch.manual_seed(seed)
    return SSLBasicVSR(**{'num_feat': 8, 'num_block': 2, **kwargs})


# ------------------------------------------------------------------------------------------- importance
def test_importance_is_the_l1_norm_of_the_right_unit():
    net = _net()
    block = net.forward_trunk.blocks[1]
    w1, w2 = block.conv1.weight, block.conv2.weight
    assert torch.allclose(net.unit_importance('forward.1.mid'), w1.abs().sum(dim=(1, 2, 3)))
    assert torch.allclose(net.unit_importance('forward.1.in'), w1.abs().sum(dim=(0, 2, 3)))
    assert torch.allclose(net.unit_importance('forward.1.out'), w2.abs().sum(dim=(1, 2, 3)))
    groups = net.upconv1.weight.abs().sum(dim=(1, 2, 3)).view(-1, 4).sum(dim=1)
    assert torch.allclose(net.unit_importance('upconv1'), groups)
    assert torch.allclose(net.unit_importance('conv_hr'), net.conv_hr.weight.abs().sum(dim=(1, 2, 3)))
    with torch.no_grad():
        block.mid_scale[2] = 0.0
    assert net.unit_importance('forward.1.mid')[2] == 0  # importance is measured on the effective weights


def test_group_score_mean_scores_pixel_shuffle_groups_per_filter():
    net = _net(upsample_feat=8)
    assert torch.allclose(net.unit_importance('upconv2', 'mean'), net.unit_importance('upconv2', 'sum') / 4)
    assert torch.equal(net.unit_importance('conv_hr', 'mean'), net.unit_importance('conv_hr', 'sum'))
    # with random weights a 4-filter group sums ~4 filters: Min-Global then spares the upsampler, per filter it does not
    pruned_groups = {}
    for score in ('sum', 'mean'):
        plan = StructuredPruner(PruningConfig(ratio=0.5, group_score=score)).select(net)
        pruned_groups[score] = sum(8 - len(plan.kept_indices(g, 8)) for g in ('upconv1', 'upconv2'))
        assert plan.extra['group_score'] == score
    assert pruned_groups['mean'] > pruned_groups['sum']
    with pytest.raises(ValueError, match='pruning.group_score'):
        PruningConfig(group_score='max')


# ------------------------------------------------------------------------------------------- selection
SCORES = {'a': torch.tensor([5.0, 1.0, 3.0, 0.5]), 'b': torch.tensor([0.1, 0.2, 9.0, 8.0])}


def test_min_global_prunes_the_smallest_scores_of_all_groups():
    assert select_kept(SCORES, 0.5, 'min_global') == {'a': [0, 2], 'b': [2, 3]}


def test_max_global_and_local_variants():
    assert select_kept(SCORES, 0.5, 'max_global') == {'a': [1, 3], 'b': [0, 1]}
    assert select_kept(SCORES, 0.5, 'min_local') == {'a': [0, 2], 'b': [2, 3]}
    assert select_kept(SCORES, 0.25, 'min_local') == {'a': [0, 1, 2], 'b': [1, 2, 3]}
    assert select_kept(SCORES, 0.25, 'max_local') == {'a': [1, 2, 3], 'b': [0, 1, 3]}


def test_global_selection_keeps_one_unit_per_group():
    scores = {'tiny': torch.tensor([0.01, 0.02]), 'big': torch.arange(10.0) + 10}
    kept = select_kept(scores, 0.75, 'min_global')
    assert kept['tiny'] == [1] and len(kept['big']) == 2


def test_random_selection_is_seeded():
    a = select_kept(SCORES, 0.5, 'random', seed=3)
    assert a == select_kept(SCORES, 0.5, 'random', seed=3)
    assert sum(map(len, a.values())) == 4
    assert any(select_kept(SCORES, 0.5, 'random', seed=s) != a for s in range(4, 10))


def test_round_to_multiples():
    scores = {'g': torch.arange(64.0)}
    assert select_kept(scores, 0.42, 'min_local', round_to=16) == {'g': list(range(32, 64))}  # 38 kept -> 32
    assert len(select_kept(scores, 0.30, 'min_local', round_to=16)['g']) == 48  # 45 -> 48, best units added back
    assert len(select_kept(scores, 0.99, 'min_local', round_to=16)['g']) == 16  # at least one multiple
    assert len(select_kept({'small': torch.arange(6.0)}, 0.5, 'min_local', round_to=8)['small']) == 6


@pytest.mark.parametrize('ratio', [-0.1, 1.0, 1.5, 'half'])
def test_bad_ratio_is_refused(ratio):
    with pytest.raises(ValueError, match='pruning.ratio'):
        select_kept(SCORES, ratio)


def test_ratio_that_would_empty_a_layer_is_refused():
    with pytest.raises(ValueError, match='empty a layer'):
        select_kept({'a': torch.ones(2), 'b': torch.ones(2)}, 0.9, 'min_global')


def test_unknown_selection_and_round_to_are_refused():
    with pytest.raises(ValueError, match='min_global'):
        select_kept(SCORES, 0.5, 'smallest')
    with pytest.raises(ValueError, match='round_to'):
        select_kept(SCORES, 0.5, round_to=0)


@pytest.mark.parametrize('selection', ['min_global', 'max_global', 'min_local', 'max_local', 'random'])
def test_table3_variants_on_the_network(selection):
    net = _net()
    pruner = StructuredPruner(PruningConfig(ratio=0.5, selection=selection))
    plan = pruner.select(net)
    sizes = pruner.groups(net)
    assert abs(plan.kept_fraction(sizes) - 0.5) < 0.01
    if selection != 'random':  # within a group, min_* keeps the most important units and max_* the least
        for name, size in sizes.items():
            score = net.unit_importance(name)
            kept, pruned = score[plan.kept_indices(name, size)], score[plan.pruned_indices(name, size)]
            if pruned.numel():
                assert kept.min() > pruned.max() if selection.startswith('min') else kept.max() < pruned.min()
    assert not any(name.endswith('hidden') for name in plan.kept)  # SSL keeps the hidden state whole (RSC)


def test_methods_choose_their_units():
    net = _net()
    assert all(n.split('.')[-1] in ('in', 'mid', 'out') or n in ('upconv1', 'upconv2', 'conv_hr')
               for n in StructuredPruner(PruningConfig(method='ssl')).groups(net))
    assert set(n.split('.')[-1] for n in StructuredPruner(PruningConfig(method='assl')).groups(net)) == \
        {'hidden', 'mid', 'upconv1', 'upconv2', 'conv_hr'}
    assert PruningConfig(method='l1_norm').selection == 'min_local'
    assert PruningConfig(method='l1_norm').prune_iter == 1


# ------------------------------------------------------------------------------------------- regularisation
def test_alpha_grows_by_delta_every_t1_iterations_up_to_tau():
    reg = GrowingRegularization(delta=0.01, tau=0.05, t1=3, t2=4)
    alphas = [reg.alpha(step) for step in range(reg.total_iters)]
    assert reg.total_iters == 5 * 3 + 4
    assert alphas[:4] == pytest.approx([0.01, 0.01, 0.01, 0.02])
    assert alphas[-5:] == pytest.approx([0.05] * 5)
    assert max(alphas) == pytest.approx(0.05)
    assert GrowingRegularization().total_iters == 5 * 1000 + 3375  # the paper's T1, T2, delta, tau


def test_regularisation_acts_on_the_selected_factors_only():
    net = _net()
    pruner = StructuredPruner(PruningConfig(ratio=0.5, regularization=GrowingRegularization(t1=1, t2=0)))
    plan = pruner.select(net)
    pruner.regularization_loss(net, plan, current_iter=1).backward()
    block = net.forward_trunk.blocks[0]
    pruned = plan.pruned_indices('forward.0.mid', 8)
    kept = plan.kept_indices('forward.0.mid', 8)
    grad = block.mid_scale.grad
    assert (grad[pruned] > 0).all() and (grad[kept] == 0).all()
    assert net.forward_trunk.hidden_scale.grad is None or not net.forward_trunk.hidden_scale.grad.any()


def _factors_by_hand(net, group):
    """The scaling factors that carry the units of ``group``, spelled out attribute by attribute."""
    if group in ('upconv1', 'upconv2', 'conv_hr'):
        return [getattr(net, f'{group}_scale')]
    branch, *rest = group.split('.')
    trunk = getattr(net, f'{branch}_trunk')
    if rest == ['hidden']:  # the hidden channels are written by the input conv and by every residual block
        return [trunk.hidden_scale] + [block.out_scale for block in trunk.blocks]
    return [getattr(trunk.blocks[int(rest[0])], f'{rest[1]}_scale')]


@pytest.mark.parametrize('bidirectional', [True, False])
def test_factor_sizes_name_every_scaling_factor(bidirectional):
    net = _net(upsample_feat=12, bidirectional=bidirectional)
    assert net.factor_sizes() == {name: p.numel() for name, p in net.named_parameters() if name.endswith('_scale')}
    assert len(net.factor_sizes()) == len(net.prunable_groups())  # one factor per group
    assert net.factor_sizes()['upconv2_scale'] == 12 and net.factor_sizes()['forward_trunk.blocks.1.in_scale'] == 8


@pytest.mark.parametrize('method', ['ssl', 'assl'])
def test_zeroing_and_factor_means_act_on_exactly_the_planned_units(method):
    net = _net()
    pruner = StructuredPruner(PruningConfig(method=method, ratio=0.5))
    plan = pruner.select(net)
    factors = {name: p for name, p in net.named_parameters() if name.endswith('_scale')}
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for factor in factors.values():  # distinct values, none of them 0 or 1
            factor.copy_(torch.rand(factor.shape, generator=generator) + 0.5)
    before = {name: factor.detach().clone() for name, factor in factors.items()}
    name_of = {id(factor): name for name, factor in factors.items()}
    expected = {name: value.clone() for name, value in before.items()}
    pruned_values, kept_values = [], []
    for group, size in pruner.groups(net).items():
        kept = list(plan.kept.get(group, range(size)))
        pruned = [i for i in range(size) if i not in kept]
        for factor in _factors_by_hand(net, group):
            name = name_of[id(factor)]
            pruned_values += before[name][pruned].tolist()
            kept_values += before[name][kept].tolist()
            expected[name][pruned] = 0
    assert pruned_values and kept_values
    expected_kept_mean = sum(kept_values) / len(kept_values)

    means = pruner.factor_means(net, plan)
    assert means['pruned'] == pytest.approx(sum(pruned_values) / len(pruned_values))
    assert means['kept'] == pytest.approx(expected_kept_mean)

    net.zero_pruned_factors(plan)
    for name, factor in factors.items():
        assert torch.equal(factor.detach(), expected[name]), name
    means = pruner.factor_means(net, plan)
    assert means['pruned'] == 0.0 and means['kept'] == pytest.approx(expected_kept_mean)


# ------------------------------------------------------------------------------------------- config
def test_config_from_options_names_unknown_keys():
    config = PruningConfig.from_options({'ratio': 0.3, 'regularization': {'t1': 2, 't2': 10}})
    assert config.regularization.total_iters == 1000 * 2 + 10 and config.prune_iter == 2011
    assert config.phase(2010) == 'regularize' and config.phase(2011) == 'finetune'
    with pytest.raises(ValueError, match='pruning: unknown key.*ratoi'):
        PruningConfig.from_options({'ratoi': 0.3})
    with pytest.raises(ValueError, match='pruning.regularization: unknown key.*T1'):
        PruningConfig.from_options({'regularization': {'T1': 3}})
    with pytest.raises(ValueError, match='pruning.method'):
        PruningConfig.from_options({'method': 'magnitude'})
    with pytest.raises(ValueError, match='pruning.units'):
        PruningConfig.from_options({'units': ['filters']})


# ------------------------------------------------------------------------------------------- TF loss
def test_temporal_finetune_loss():
    loss = TemporalFinetuneLoss()
    h = {'forward': torch.ones(2, 4, 3, 3), 'backward': torch.zeros(2, 4, 3, 3)}
    assert loss(h, h).item() == 0
    student = {'forward': torch.ones(2, 4, 3, 3, requires_grad=True), 'backward': torch.zeros(2, 4, 3, 3)}
    teacher = {'forward': torch.zeros(2, 4, 3, 3, requires_grad=True), 'backward': torch.zeros(2, 4, 3, 3)}
    value = loss(student, teacher)
    assert value.item() == pytest.approx(6.0)  # Frobenius norm of ones(4, 3, 3) per sample
    value.backward()
    assert student['forward'].grad is not None and teacher['forward'].grad is None  # the teacher is not trained
    assert TemporalFinetuneLoss(norm='mse')(h, teacher).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match='teacher'):
        loss({'forward': torch.ones(1, 3, 2, 2)}, {'forward': torch.ones(1, 4, 2, 2)})
    with pytest.raises(ValueError, match='norm'):
        TemporalFinetuneLoss(norm='huber')


def test_factor_curve_csv_and_png(tmp_path):
    curve = FactorCurve(str(tmp_path / 'curve.csv'))
    for it in (1, 10, 20):
        curve.record(it, 0.01 * it, 1.0 / it, 1.0 + it / 100)
    curve.record(20, 0.2, 0.04, 1.3)  # a resumed run rewrites iteration 20
    assert [r['iter'] for r in curve.rows()] == [1, 10, 20] and curve.rows()[-1]['gamma_pruned'] == 0.04
    png = curve.save_plot()
    assert png and os.path.getsize(png) > 1000


# ------------------------------------------------------------------------------------------- distributed
def _rank_main(rank, world_size, port, results):
    import torch.distributed as dist

    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=world_size)
    net = _net(seed=rank)  # deliberately different weights on each rank
    plan = broadcast_plan(StructuredPruner(PruningConfig(ratio=0.5)).select(net))
    results[rank] = plan.to_dict()
    dist.destroy_process_group()


def test_every_rank_prunes_identically():
    import socket

    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    results = mp.Manager().dict()
    mp.spawn(_rank_main, args=(2, port, results), nprocs=2, join=True)
    assert results[0] == results[1]
    assert PruningPlan.from_dict(results[0]) == StructuredPruner(PruningConfig(ratio=0.5)).select(_net(seed=0))

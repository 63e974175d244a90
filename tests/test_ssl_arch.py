"""SSLBasicVSR: equivalence with BasicSR / MMagic BasicVSR, compact = dense with zeroed factors, state round trips."""
import io
from pathlib import Path

import pytest
import torch

from ssl_plugin.archs import SSLBasicVSR
from ssl_plugin.pruning.plan import PlanError, PruningPlan

NUM_FEAT, NUM_BLOCK = 8, 2
FIXTURES = Path(__file__).parent / 'fixtures'


def _frames(t=3, size=32, seed=0):
    return torch.rand(1, t, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _randomise(module, seed=0, std=0.05):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith('_scale'):
                p.copy_(torch.empty_like(p).uniform_(0.5, 1.5, generator=generator))
            else:
                p.copy_(torch.randn(p.shape, generator=generator) * std)
    return module


def _random_plan(net, seed=0, units=('in', 'mid', 'out', 'upconv1', 'upconv2', 'conv_hr')):
    generator = torch.Generator().manual_seed(seed)
    kept = {}
    for name, size in net.prunable_groups().items():
        if name.split('.')[-1] in units or name in units:
            keep = max(1, int(torch.randint(1, size, (1,), generator=generator)))
            kept[name] = sorted(torch.randperm(size, generator=generator)[:keep].tolist())
    return PruningPlan(arch=net.config, kept=kept)


@pytest.mark.parametrize('source', ['basicsr', 'mmagic'])
def test_loads_toolbox_checkpoints_and_matches_their_output(source):
    if source == 'basicsr':
        from basicsr.archs.basicvsr_arch import BasicVSR
        reference = BasicVSR(num_feat=NUM_FEAT, num_block=NUM_BLOCK)
    else:
        from mmagic.models.editors.basicvsr.basicvsr_net import BasicVSRNet
        reference = BasicVSRNet(mid_channels=NUM_FEAT, num_blocks=NUM_BLOCK)
    _randomise(reference.eval())
    ours = SSLBasicVSR(num_feat=NUM_FEAT, num_block=NUM_BLOCK).eval()
    result = ours.load_state_dict(reference.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    frames = _frames(size=64)
    with torch.no_grad():
        assert torch.equal(ours(frames), reference(frames))
    assert all(torch.equal(v, torch.ones_like(v)) for k, v in ours.state_dict().items() if k.endswith('_scale'))


def test_uses_the_original_activations():
    net = SSLBasicVSR(num_feat=NUM_FEAT, num_block=NUM_BLOCK)
    assert isinstance(net.lrelu, torch.nn.LeakyReLU) and net.lrelu.negative_slope == 0.1
    assert isinstance(net.forward_trunk.lrelu, torch.nn.LeakyReLU) and net.forward_trunk.lrelu.negative_slope == 0.1
    assert isinstance(net.forward_trunk.blocks[0].relu, torch.nn.ReLU)


@pytest.mark.parametrize('bidirectional', [True, False])
@pytest.mark.parametrize('compact', [False, True])
def test_every_parameter_gets_a_gradient(bidirectional, compact):
    net = _randomise(SSLBasicVSR(num_feat=NUM_FEAT, num_block=NUM_BLOCK, bidirectional=bidirectional))
    if compact:
        net = net.pruned(_random_plan(net))
    output, hidden = net(_frames(), return_hidden=True)
    assert output.shape == (1, 3, 3, 128, 128)
    assert set(hidden) == ({'forward', 'backward'} if bidirectional else {'forward'})
    (output.mean() + sum(h.mean() for h in hidden.values())).backward()
    missing = [name for name, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def test_uni_has_no_backward_branch_and_rejects_a_bidirectional_checkpoint():
    uni = SSLBasicVSR(num_feat=NUM_FEAT, num_block=NUM_BLOCK, bidirectional=False)
    assert uni.backward_trunk is None
    assert not [n for n in uni.state_dict() if n.startswith('backward')]
    with pytest.raises(RuntimeError):
        uni.load_state_dict(SSLBasicVSR(num_feat=NUM_FEAT, num_block=NUM_BLOCK).state_dict(), strict=True)


@pytest.mark.parametrize('bidirectional', [True, False])
@pytest.mark.parametrize('kind', ['ssl', 'aligned_hidden'])
def test_compact_output_equals_dense_with_pruned_factors_zeroed(bidirectional, kind):
    dense = _randomise(SSLBasicVSR(num_feat=NUM_FEAT, num_block=NUM_BLOCK, bidirectional=bidirectional)).eval()
    units = ('in', 'mid', 'out', 'upconv1', 'upconv2', 'conv_hr') if kind == 'ssl' else ('hidden', 'mid', 'conv_hr')
    plan = _random_plan(dense, units=units)
    compact = dense.pruned(plan).eval()
    dense.zero_pruned_factors(plan)
    frames = _frames(t=4)
    with torch.no_grad():
        difference = (compact(frames) - dense(frames)).abs().max().item()
    assert difference < 1e-5
    assert sum(p.numel() for p in compact.parameters()) < sum(p.numel() for p in dense.parameters())


def test_convs_really_shrink():
    dense = SSLBasicVSR(num_feat=NUM_FEAT, num_block=NUM_BLOCK)
    plan = PruningPlan(arch=dense.config, kept={'forward.0.in': [1, 2], 'forward.0.mid': [0, 3, 5],
                                                'forward.0.out': [7], 'upconv1': [0, 1], 'upconv2': [4, 5, 6],
                                                'conv_hr': [9]})
    compact = dense.pruned(plan)
    block = compact.forward_trunk.blocks[0]
    assert block.conv1.weight.shape == (3, 2, 3, 3) and block.conv2.weight.shape == (1, 3, 3, 3)
    assert block.in_index.tolist() == [1, 2] and block.out_index.tolist() == [7]
    assert compact.forward_trunk.blocks[1].in_index is None  # an unpruned block reads the whole state
    assert compact.upconv1.weight.shape == (8, NUM_FEAT, 3, 3)
    assert compact.upconv2.weight.shape == (12, 2, 3, 3)
    assert compact.conv_hr.weight.shape == (1, 3, 3, 3) and compact.conv_last.weight.shape == (3, 1, 3, 3)
    assert not [n for n, _ in compact.named_parameters() if n.endswith('_scale')]


@pytest.mark.parametrize('bidirectional', [True, False])
def test_blocks_keeping_no_input_or_no_output_channel_run_eager_and_scripted(bidirectional):
    # 'in' / 'out' kept outside the kept hidden channels: forward.0 reads none of the state, forward.1 writes none
    dense = _randomise(SSLBasicVSR(num_feat=NUM_FEAT, num_block=NUM_BLOCK, bidirectional=bidirectional)).eval()
    plan = PruningPlan(arch=dense.config, kept={'forward.hidden': [0, 1, 2, 3], 'forward.0.in': [5, 6],
                                                'forward.1.out': [4, 7], 'forward.1.in': [2, 6]})
    compact = dense.pruned(plan).eval()
    reads_none, writes_none = compact.forward_trunk.blocks
    assert reads_none.in_index.dtype == writes_none.out_index.dtype == torch.long
    assert reads_none.in_index.numel() == writes_none.out_index.numel() == 0
    assert reads_none.conv1.weight.shape[1] == writes_none.conv2.weight.shape[0] == 0
    assert writes_none.in_index.tolist() == [2]
    dense.zero_pruned_factors(plan)
    scripted = torch.jit.script(compact.export_form().eval())
    frames = _frames(t=3)
    with torch.no_grad():
        eager = compact(frames)
        assert (eager - dense(frames)).abs().max().item() < 1e-5
        assert (scripted(frames) - eager).abs().max().item() < 1e-6


def test_residual_add_is_out_of_place_and_differentiable():
    from ssl_plugin.archs.ssl_basicvsr_arch import ResidualBlock

    block = ResidualBlock(6, kept=([0, 2, 5], [1, 4], [1, 3])).double()
    x = torch.randn(1, 6, 5, 5, dtype=torch.double, requires_grad=True)
    before = x.detach().clone()
    y = block(x)
    assert torch.equal(x.detach(), before)
    assert torch.equal(y[:, [0, 2, 4, 5]], x[:, [0, 2, 4, 5]])  # channels the block does not write
    assert torch.autograd.gradcheck(block, (x,), eps=1e-6, atol=1e-5)


def test_checkpoint_alone_rebuilds_the_compact_network_without_pickled_objects():
    dense = _randomise(SSLBasicVSR(num_feat=NUM_FEAT, num_block=NUM_BLOCK)).eval()
    compact = dense.pruned(_random_plan(dense)).eval()
    buffer = io.BytesIO()
    torch.save({'params': compact.state_dict()}, buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)['params']  # plain data only
    fresh = SSLBasicVSR(num_feat=NUM_FEAT, num_block=NUM_BLOCK).eval()
    fresh.load_state_dict(state, strict=True)
    assert fresh.plan == compact.plan
    frames = _frames()
    with torch.no_grad():
        assert torch.equal(fresh(frames), compact(frames))


def test_checkpoint_written_before_the_layout_change_loads_and_tests_identically():
    state = torch.load(FIXTURES / 'ssl_compact_before_layout.pth', weights_only=True)['params']
    io_pair = torch.load(FIXTURES / 'ssl_compact_before_layout_io.pt', weights_only=True)
    net = SSLBasicVSR(**io_pair['config']).eval()
    result = net.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert net.plan is not None and set(net.state_dict()) == set(state)
    with torch.no_grad():
        output = net(io_pair['lqs'])
    # identical up to float rounding: the fixture was written on another CPU, whose kernels round differently
    # (1 ulp, 1.2e-7, seen on an AMD EPYC); a wrong layout would differ by orders of magnitude more
    assert torch.allclose(output, io_pair['output'], rtol=0, atol=1e-6)


def test_basicsr_non_strict_loader_renaming_is_undone():
    dense = _randomise(SSLBasicVSR(num_feat=NUM_FEAT, num_block=NUM_BLOCK)).eval()
    compact = dense.pruned(_random_plan(dense)).eval()
    state = compact.state_dict()
    fresh = SSLBasicVSR(num_feat=NUM_FEAT, num_block=NUM_BLOCK).eval()
    for key, value in list(state.items()):  # what BasicSR's _print_different_keys_loading(strict=False) does
        if key in fresh.state_dict() and torch.is_tensor(value) and value.shape != fresh.state_dict()[key].shape:
            state[key + '.ignore'] = state.pop(key)
    fresh.load_state_dict(state, strict=False)
    frames = _frames()
    with torch.no_grad():
        assert torch.equal(fresh(frames), compact(frames))


def test_plan_must_match_the_architecture():
    net = SSLBasicVSR(num_feat=NUM_FEAT, num_block=NUM_BLOCK)
    wider = SSLBasicVSR(num_feat=NUM_FEAT * 2, num_block=NUM_BLOCK)
    plan = _random_plan(wider)
    with pytest.raises(PlanError, match='num_feat'):
        net.pruned(plan)
    with pytest.raises(PlanError, match='does not have'):
        SSLBasicVSR(num_feat=NUM_FEAT, num_block=NUM_BLOCK,
                    plan=PruningPlan(arch=net.config, kept={'forward.9.mid': [0]}))
    with pytest.raises(PlanError, match='only 8 units'):
        SSLBasicVSR(num_feat=NUM_FEAT, num_block=NUM_BLOCK,
                    plan=PruningPlan(arch=net.config, kept={'forward.0.mid': [0, 8]}))
    with pytest.raises(PlanError, match='keeps no unit'):
        PruningPlan(arch=net.config, kept={'forward.0.mid': []})
    with pytest.raises(PlanError, match='not a pruning plan'):
        PruningPlan.from_dict({'kept': {}})


def test_pruning_a_compact_network_is_refused():
    net = SSLBasicVSR(num_feat=NUM_FEAT, num_block=NUM_BLOCK)
    compact = net.pruned(_random_plan(net))
    with pytest.raises(RuntimeError, match='compact'):
        compact.pruned(compact.plan)
    with pytest.raises(RuntimeError, match='compact'):
        compact.unit_importance('forward.0.mid')

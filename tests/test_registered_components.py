"""Every registered component of every kind, taken from the registry itself (timm-style): a component added later
is covered without editing this file, through the tiny ``example`` it declares when it registers."""
import copy

import pytest
import torch

from effsr_core import registry
from effsr_core.plugins import import_plugins

import_plugins()


def _cases(kind):
    return [pytest.param(name, id=name) for name in sorted(registry.components(kind))]


def _example(kind, name):
    example = registry.example(kind, name)
    assert example is not None, f'{kind} {name!r} declares no example: register(..., example={{...}})'
    return example


def _tensors(tree):
    if isinstance(tree, torch.Tensor):
        return [tree]
    if isinstance(tree, dict):
        tree = list(tree.values())
    if isinstance(tree, (list, tuple)):
        return [t for item in tree for t in _tensors(item)]
    return []


def test_the_registry_holds_the_shipped_components():
    assert {'RFDN', 'SSLBasicVSR'} <= set(registry.components('arch'))
    assert 'TemporalFinetuneLoss' in registry.components('loss')


@pytest.mark.parametrize('name', _cases('arch'))
def test_arch_builds_runs_trains_and_round_trips(name):
    example = _example('arch', name)
    cls = registry.components('arch')[name]
    torch.manual_seed(0)
    net = cls(**example['kwargs'])
    lq = torch.rand(example['input'], generator=torch.Generator().manual_seed(1))
    output = net(lq)
    assert output.shape[:-2] == lq.shape[:-2] and output.shape[-1] > lq.shape[-1]
    output.mean().backward()
    assert not [n for n, p in net.named_parameters() if p.requires_grad and p.grad is None]
    torch.manual_seed(1)  # a twin with other initial weights takes the state dict and computes the same
    twin = cls(**example['kwargs'])
    twin.load_state_dict(net.state_dict())
    net.eval(), twin.eval()
    with torch.no_grad():
        assert torch.equal(net(lq), twin(lq))


@pytest.mark.parametrize('name', _cases('loss'))
def test_loss_is_finite_and_differentiable(name):
    example = _example('loss', name)
    criterion = registry.components('loss')[name](**example['kwargs'])
    inputs = example['inputs']()
    for tensor in _tensors(inputs[0]):
        tensor.requires_grad_(True)
    value = criterion(*inputs)
    assert value.dim() == 0 and torch.isfinite(value)
    value.backward()
    grads = [t.grad for t in _tensors(inputs[0])]
    assert all(g is not None and torch.isfinite(g).all() for g in grads) and any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize('name', _cases('lr_scheduler'))
def test_lr_scheduler_round_trips_its_state(name):
    example = _example('lr_scheduler', name)
    cls = registry.components('lr_scheduler')[name]

    def build():
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        return optimizer, cls(optimizer, **example['kwargs'])

    optimizer, scheduler = build()
    for _ in range(example.get('steps', 5)):
        optimizer.step()
        scheduler.step()
    state = copy.deepcopy(scheduler.state_dict())
    reloaded_optimizer, reloaded = build()
    reloaded.load_state_dict(state)
    reloaded_optimizer.load_state_dict(optimizer.state_dict())
    for _ in range(3):
        for opt, sched in ((optimizer, scheduler), (reloaded_optimizer, reloaded)):
            opt.step()
            sched.step()
        assert reloaded.get_last_lr() == scheduler.get_last_lr()


def test_every_kind_has_components_and_an_unknown_kind_is_refused():
    """A kind with nothing registered is dead weight, and its registry-wide test above would only ever skip."""
    assert [kind for kind in registry.KINDS if not registry.components(kind)] == []
    with pytest.raises(ValueError, match=r"Unknown component kind 'sampler'; allowed: arch, loss, lr_scheduler\."):
        registry.register('sampler')

"""Every shipped options file and config gives a network that runs on the CPU: built from the file (shrunk to a tiny
width and depth, same architecture), one forward on a random input of its layout, one Adam step on an L1 loss."""
import copy
import importlib
from pathlib import Path

import pytest
import torch

from effsr_core.networks import read_options

REPO_ROOT = Path(__file__).resolve().parent.parent
BASICSR_OPTIONS = sorted((REPO_ROOT / 'options/basicsr').rglob('*.yml'))
MMAGIC_CONFIGS = sorted(p for p in (REPO_ROOT / 'options/mmagic').rglob('*.py') if '_base_' not in p.parts)

#: Size arguments, whatever the architecture, set to a tiny value wherever the network's options name them.
TINY = {'num_feat': 8, 'mid_channels': 8, 'upsample_feat': 8, 'num_block': 1, 'num_blocks': 1,
        'num_extract_block': 1, 'num_reconstruct_block': 1, 'num_frame': 3}
TINY_WIDTH = 8  # PlainConvSR: the hidden layers' width (the pixel-shuffle and output layers keep theirs)
FRAMES, SIZE = 3, 16  # clip length and LR size of the random input (EDVR's pyramid needs a multiple of 4)
#: MMagic generators built on mmcv.ops' deformable conv, which mmcv-lite does not have.
MMCV_DEFORMABLE = ('BasicVSRPlusPlusNet', 'EDVRNet', 'IconVSRNet', 'TDANNet')


def _tiny(network: dict) -> dict:
    """``network`` with its size arguments shrunk and no pretrained weights (nothing is downloaded or read)."""
    network = copy.deepcopy(dict(network))
    for key in list(network):
        if key == 'pretrained' or key.endswith(('_path', '_pretrained')):
            network[key] = None
        elif key in TINY:
            network[key] = TINY[key]
    if network['type'] == 'PlainConvSR':
        shuffles = network.get('shuffles', 1)
        shuffles = [shuffles] * len(network['widths']) if isinstance(shuffles, int) else shuffles
        last = len(network['widths']) - 1
        network['widths'] = [min(width, TINY_WIDTH) if i < last and shuffle == 1 else width
                             for i, (width, shuffle) in enumerate(zip(network['widths'], shuffles))]
    return network


def _train_once(net: torch.nn.Module, lq: torch.Tensor, expected_shape: tuple) -> None:
    """One forward (shape checked) and one optimiser step; some parameter must change."""
    torch.manual_seed(0)
    net.train()
    before = [p.detach().clone() for p in net.parameters()]
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    out = net(lq)
    assert tuple(out.shape) == expected_shape
    loss = torch.nn.functional.l1_loss(out, torch.rand(expected_shape))
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert any(not torch.equal(old, new) for old, new in zip(before, net.parameters()))


@pytest.mark.slow  # ~0.3 s a file, ~120 files
@pytest.mark.parametrize('path', BASICSR_OPTIONS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_basicsr_options_network_trains_on_cpu(path):
    from basicsr.models.video_recurrent_model import VideoRecurrentModel
    from basicsr.utils.registry import MODEL_REGISTRY

    from effsr_core.basicsr import build, register_all

    register_all()
    _, options = read_options(path)
    net = build.build_network(_tiny(options['network_g']))
    scale = options['scale']
    torch.manual_seed(0)
    if build.is_video_model(options):
        frames = _tiny(options['network_g']).get('num_frame', FRAMES)
        lq = torch.rand(1, frames, 3, SIZE, SIZE)
        recurrent = issubclass(MODEL_REGISTRY.get(options['model_type']), VideoRecurrentModel)
        expected = (1, frames, 3) if recurrent else (1, 3)  # a sliding window (EDVR) restores the centre frame
    else:
        lq, expected = torch.rand(1, 3, SIZE, SIZE), (1, 3)
    _train_once(net, lq, (*expected, SIZE * scale, SIZE * scale))


@pytest.mark.slow
@pytest.mark.parametrize('path', MMAGIC_CONFIGS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_mmagic_config_generator_trains_on_cpu(path):
    from effsr_core.mmagic import build

    _, config = read_options(path)
    generator = _tiny(config.model.generator)
    if generator['type'] in MMCV_DEFORMABLE and not getattr(importlib.import_module('mmcv._ext'), '__file__', None):
        pytest.skip(f'{generator["type"]} needs full mmcv (mmcv.ops deformable conv); mmcv-lite is installed')
    net = build.build_generator(generator)
    torch.manual_seed(0)
    if build.is_video_model(config):
        lq, expected = torch.rand(1, FRAMES, 3, SIZE, SIZE), (1, FRAMES, 3)
    else:
        lq, expected = torch.rand(1, 3, SIZE, SIZE), (1, 3)
    _train_once(net, lq, (*expected, SIZE * config.scale, SIZE * config.scale))


def test_tiny_keeps_the_architecture_and_drops_weight_paths():
    network = {'type': 'PlainConvSR', 'in_channels': 3, 'widths': [64, 64, 12], 'shuffles': [1, 1, 2],
               'spynet_path': 'a.pth', 'pretrained': 'b.pth', 'num_feat': 64}
    assert _tiny(network) == {'type': 'PlainConvSR', 'in_channels': 3, 'widths': [8, 8, 12], 'shuffles': [1, 1, 2],
                              'spynet_path': None, 'pretrained': None, 'num_feat': 8}
    assert network['widths'] == [64, 64, 12]  # the options themselves are untouched

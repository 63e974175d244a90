"""Tests of inference (``effsr_core.inference`` and the ``effsr_core.infer`` command): outputs, their names and
sizes against the network's own forward, tiling (tiled == untiled when the receptive field fits), clip windows,
video files (== a folder of their decoded frames), atomic writes and every refused input. CPU, seeded, tiny networks
and images and videos written into tmp_path."""
from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from effsr_core import compat
from effsr_core.images import bgr_to_tensor, read_bgr, tensor_to_bgr
from effsr_core.infer import main
from effsr_core.inference import (ClipWindow, InferenceError, InferenceSettings, border_share, check_tile_fits,
                                  forward_tiled, plan_clips, plan_images, run_inference, tile_starts, tile_weights)
from effsr_core.video_files import read_frames
from memsr_plugin.conversion import PlainConvSR

compat.install()

#: Three 3x3 convs at LR size, then a pixel shuffle: an output pixel sees the LR pixels within 3 of its own.
PLAIN = {'in_channels': 3, 'widths': [8, 8, 48], 'acts': ['relu', 'relu', 'identity'], 'shuffles': [1, 1, 4]}
PLAIN_RADIUS = 3
PLAIN_YAML = ('model_type: SRModel\nscale: 4\nnetwork_g:\n  type: PlainConvSR\n  in_channels: 3\n'
              '  widths: [8, {width}, 48]\n  acts: [relu, relu, identity]\n  shuffles: [1, 1, 4]\n')
BASICVSR_YAML = ('model_type: VideoRecurrentModel\nscale: 4\nnetwork_g:\n  type: BasicVSR\n  num_feat: 8\n'
                 '  num_block: 1\n  spynet_path: ~\n')
#: Largest difference allowed between tiled and untiled float outputs (conv algorithms may differ by tile size).
TILED_TOLERANCE = 1e-5


def plain_network(seed: int = 0) -> PlainConvSR:
    torch.manual_seed(seed)
    return PlainConvSR(**PLAIN).eval()


class Framewise(nn.Module):
    """A video network that super-resolves each frame alone: (b, t, c, h, w) -> (b, t, c, 4h, 4w)."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x.flatten(0, 1)).unflatten(0, x.shape[:2])


def write_images(folder, sizes, suffixes=None, seed=0) -> list:
    """Random uint8 images of the given (h, w) sizes, named 00000000.png... (or by the given suffixes)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for index, (height, width) in enumerate(sizes):
        path = folder / f'{index:08d}{suffixes[index] if suffixes else ".png"}'
        assert cv2.imwrite(str(path), rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
        paths.append(path)
    return paths


def write_video(path, frames: int, size=(32, 40), seed=0):
    """A lossless FFV1 video of random uint8 frames of (h, w) ``size``."""
    height, width = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'FFV1'), 5, (width, height))
    assert writer.isOpened(), 'OpenCV cannot write FFV1 here'
    rng = np.random.default_rng(seed)
    for _ in range(frames):
        writer.write(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    writer.release()
    return path


@pytest.fixture
def plain_files(tmp_path):
    """Options YAML, BasicSR checkpoint and the network itself."""
    network = plain_network()
    options, checkpoint = tmp_path / 'plain.yml', tmp_path / 'plain.pth'
    options.write_text(PLAIN_YAML.format(width=8))
    torch.save({'params': network.state_dict()}, checkpoint)
    return options, checkpoint, network


@pytest.fixture
def basicvsr_files(tmp_path):
    """Options YAML, bare checkpoint and a small BasicSR BasicVSR (random SpyNet)."""
    from basicsr.archs.basicvsr_arch import BasicVSR

    torch.manual_seed(0)
    network = BasicVSR(num_feat=8, num_block=1, spynet_path=None).eval()
    options, checkpoint = tmp_path / 'basicvsr.yml', tmp_path / 'basicvsr.pth'
    options.write_text(BASICVSR_YAML)
    torch.save(network.state_dict(), checkpoint)
    return options, checkpoint, network


def forward_image(network: nn.Module, path) -> np.ndarray:
    """uint8 BGR output of the network's own forward on one image file."""
    with torch.no_grad():
        return tensor_to_bgr(network(bgr_to_tensor(read_bgr(path))[None])[0])


def forward_sequence(network: nn.Module, frames: list) -> list:
    """uint8 BGR outputs of the network's own forward on one sequence of frame files."""
    inputs = torch.stack([bgr_to_tensor(read_bgr(path)) for path in frames])[None]
    with torch.no_grad():
        return [tensor_to_bgr(frame) for frame in network(inputs)[0]]


# ----- tiling

@pytest.mark.parametrize('tile, overlap', [(16, 6), (16, 0), (9, 8), (32, 31)])
def test_tiles_cover_the_frame_with_at_least_the_overlap(tile, overlap):
    for length in range(1, 120):
        starts = tile_starts(length, tile, overlap)
        if length <= tile:
            assert starts == [0]
            continue
        assert starts[0] == 0 and starts[-1] + tile == length
        shared = [tile - (after - before) for before, after in zip(starts, starts[1:])]
        assert min(shared) >= overlap and max(shared) < tile, (length, starts)
        fewer = len(starts) - 1  # one tile fewer could not cover the length with that overlap
        assert fewer * tile - (fewer - 1) * overlap < length


@pytest.mark.parametrize('length, tile, overlap, blend, scale',
                         [(50, 16, 6, 3, 4), (50, 16, 6, 0, 2), (37, 12, 4, 4, 3), (100, 40, 10, 5, 1)])
def test_tile_weights_add_up_to_one_across_each_seam(length, tile, overlap, blend, scale):
    starts = tile_starts(length, tile, overlap)
    total = torch.zeros(length * scale)
    for start, weight in zip(starts, tile_weights(starts, tile, blend, scale)):
        assert weight.min() >= 0 and weight.max() <= 1
        total[start * scale:(start + tile) * scale] += weight
    assert torch.allclose(total, torch.ones_like(total), atol=1e-6)


def tight_input(tile: int, overlap: int, seed: int = 1) -> torch.Tensor:
    """An LR input whose neighbouring tiles share exactly ``overlap`` pixels: 2 rows and 3 columns of tiles."""
    size = (2 * tile - overlap, 3 * tile - 2 * overlap)
    return torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize('overlap, blend', [(6, 0), (7, 1), (10, 4), (12, None), (13, 7), (20, 14)])
def test_tiled_output_equals_untiled_when_the_receptive_field_fits(overlap, blend):
    # (overlap - blend) // 2 >= 3 = PLAIN_RADIUS in every case: each output pixel is taken only from tiles where it
    # lies at least 3 LR pixels away from their inner edges.
    network, inputs = plain_network(), tight_input(24, overlap)
    assert tile_starts(inputs.shape[-1], 24, overlap) == [0, 24 - overlap, 48 - 2 * overlap]
    with torch.no_grad():
        untiled = network(inputs)
        tiled = forward_tiled(network, inputs, tile=24, overlap=overlap, blend=blend)
    assert tiled.shape == untiled.shape == (1, 3, *(4 * size for size in inputs.shape[-2:]))
    assert (tiled - untiled).abs().max() <= TILED_TOLERANCE


@pytest.mark.parametrize('overlap, blend', [(4, 0), (6, 2), (6, 4), (12, 8)])
def test_tiled_output_differs_when_the_receptive_field_does_not_fit(overlap, blend):
    network, inputs = plain_network(), tight_input(24, overlap)  # (overlap - blend) // 2 < 3
    with torch.no_grad():
        untiled = network(inputs)
        tiled = forward_tiled(network, inputs, tile=24, overlap=overlap, blend=blend)
    assert (tiled - untiled).abs().max() > 1e-3


def test_fades_are_weighted_means_of_the_tiles():
    # Nearest upsampling has a receptive field of one pixel: any tiling, any fade, gives the untiled output.
    class Nearest(nn.Module):
        def forward(self, x):
            return F.interpolate(x, scale_factor=3, mode='nearest')

    inputs = torch.rand(1, 3, 29, 31, generator=torch.Generator().manual_seed(2))
    for tile, overlap, blend in [(8, 4, 4), (8, 7, 7), (10, 2, 1), (30, 0, 0)]:
        tiled = forward_tiled(Nearest(), inputs, tile=tile, overlap=overlap, blend=blend)
        assert (tiled - Nearest()(inputs)).abs().max() <= 1e-6


def test_video_networks_are_tiled_across_every_frame_of_the_clip():
    network = Framewise(plain_network())
    inputs = torch.rand(1, 4, 3, 30, 26, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        untiled = network(inputs)
        tiled = forward_tiled(network, inputs, tile=16, overlap=8, blend=2)
    assert tiled.shape == untiled.shape == (1, 4, 3, 120, 104)
    assert (tiled - untiled).abs().max() <= TILED_TOLERANCE


def test_a_tile_within_the_receptive_field_is_refused():
    network = plain_network()  # receptive field: PLAIN_RADIUS = 3 LR pixels on each side
    for tile in (6, 8):  # a change at the centre (pixel tile // 2) reaches the border pixel tile - 1 or 0
        with pytest.raises(InferenceError, match=f'wider than a {tile}-pixel tile') as error:
            check_tile_fits(network, InferenceSettings(tile=tile, tile_overlap=2), video=False)
        assert error.value.setting == 'tile'
    assert border_share(network, 6) > 0.01
    assert border_share(network, 9) == 0.0  # reach 1..7 of 0..8
    check_tile_fits(network, InferenceSettings(tile=9, tile_overlap=2), video=False)
    check_tile_fits(Framewise(network), InferenceSettings(tile=9, tile_overlap=2), video=True)
    check_tile_fits(network, InferenceSettings(tile=0), video=False)  # no tiling, nothing to check


def test_a_network_without_an_integer_scale_is_refused():
    class Crop(nn.Module):
        def forward(self, x):
            return F.interpolate(x, scale_factor=2)[..., 1:, :]

    with pytest.raises(InferenceError, match='not one integer scale; choose a --tile') as error:
        forward_tiled(Crop(), torch.rand(1, 3, 20, 20), tile=12, overlap=4)
    assert error.value.setting == 'tile'


# ----- clips

def test_clip_windows_keep_every_frame_once_with_its_context():
    assert plan_clips(7) == [ClipWindow(0, 7, 0, 7)]
    assert plan_clips(7, 7, 3) == [ClipWindow(0, 7, 0, 7)]
    assert plan_clips(7, 5, 1) == [ClipWindow(0, 5, 0, 4), ClipWindow(2, 7, 4, 7)]
    for frames in range(1, 40):
        for length in range(1, 12):
            for overlap in range(0, (length + 1) // 2):
                windows = plan_clips(frames, length, overlap)
                kept = [index for window in windows for index in range(window.keep_start, window.keep_stop)]
                assert kept == list(range(frames))
                for window in windows:
                    assert window.stop - window.start == min(length, frames)
                    assert 0 <= window.start <= window.keep_start < window.keep_stop <= window.stop <= frames
                    assert window.keep_start - window.start >= min(overlap, window.keep_start)
                    assert window.stop - window.keep_stop >= min(overlap, frames - window.keep_stop)
    with pytest.raises(InferenceError, match='needs more than twice'):
        plan_clips(10, 4, 2)


# ----- the command, image models

def test_images_are_super_resolved_into_pngs_equal_to_the_forward(tmp_path, plain_files, capsys):
    options, checkpoint, network = plain_files
    inputs = write_images(tmp_path / 'lr', [(12, 20), (17, 9), (8, 8)], ['.png', '.bmp', '.jpg'])
    (tmp_path / 'lr' / 'notes.txt').write_text('not an image')
    assert main(['-opt', str(options), '--checkpoint', str(checkpoint), '--input', str(tmp_path / 'lr'),
                 '--output', str(tmp_path / 'sr')]) == 0
    assert sorted(path.name for path in (tmp_path / 'sr').iterdir()) == ['00000000.png', '00000001.png',
                                                                         '00000002.png']
    for path in inputs:
        output = cv2.imread(str(tmp_path / 'sr' / f'{path.stem}.png'), cv2.IMREAD_UNCHANGED)
        assert output.shape == (read_bgr(path).shape[0] * 4, read_bgr(path).shape[1] * 4, 3)
        np.testing.assert_array_equal(output, forward_image(network, path))
    captured = capsys.readouterr()
    assert '[1/3] 00000000' in captured.err and '[3/3] 00000002' in captured.err
    assert 'super-resolved 3 images in' in captured.out


def test_tiled_images_match_untiled_ones_to_the_rounding(tmp_path, plain_files):
    options, checkpoint, _ = plain_files
    write_images(tmp_path / 'lr', [(40, 52), (23, 31)])
    common = ['-opt', str(options), '--checkpoint', str(checkpoint), '--input', str(tmp_path / 'lr')]
    main([*common, '--output', str(tmp_path / 'whole')])
    main([*common, '--output', str(tmp_path / 'tiled'), '--tile', '20', '--tile-overlap', '12'])
    for name in ('00000000.png', '00000001.png'):
        whole, tiled = (cv2.imread(str(tmp_path / kind / name)).astype(int) for kind in ('whole', 'tiled'))
        # margin (12 - 6) // 2 = 3 = PLAIN_RADIUS: floats within 1e-5, so a value may only round the other way
        assert np.abs(whole - tiled).max() <= 1


# ----- the command, video models

def test_clip_folders_keep_their_layout_and_equal_the_forward(tmp_path, basicvsr_files, capsys):
    options, checkpoint, network = basicvsr_files
    clips = {'000': write_images(tmp_path / 'lr' / '000', [(32, 32)] * 4, seed=1),
             '011': write_images(tmp_path / 'lr' / '011', [(32, 40)] * 3, seed=2)}
    assert main(['-opt', str(options), '--checkpoint', str(checkpoint), '--input', str(tmp_path / 'lr'),
                 '--output', str(tmp_path / 'sr')]) == 0
    for clip, frames in clips.items():
        outputs = sorted((tmp_path / 'sr' / clip).iterdir())
        assert [path.name for path in outputs] == [path.name for path in frames]
        for output, expected in zip(outputs, forward_sequence(network, frames)):
            np.testing.assert_array_equal(cv2.imread(str(output)), expected)
        assert cv2.imread(str(outputs[0])).shape == (read_bgr(frames[0]).shape[0] * 4,
                                                     read_bgr(frames[0]).shape[1] * 4, 3)
    captured = capsys.readouterr()
    assert '[1/2] 000: 4 frames, 1 forward' in captured.err and '[2/2] 011: 3 frames' in captured.err
    assert 'super-resolved 2 sequences, 7 frames, 2 forwards' in captured.out


def test_clips_forward_windows_and_keep_the_frames_with_context(tmp_path, basicvsr_files, capsys):
    options, checkpoint, network = basicvsr_files
    frames = write_images(tmp_path / 'lr', [(32, 32)] * 7, seed=3)
    main(['-opt', str(options), '--checkpoint', str(checkpoint), '--input', str(tmp_path / 'lr'),
          '--output', str(tmp_path / 'sr'), '--clip-length', '5', '--clip-overlap', '1'])
    # windows [0, 5) keeping 0-3 (one frame of context after frame 3) and [2, 7) keeping 4-6
    expected = forward_sequence(network, frames[0:5])[0:4] + forward_sequence(network, frames[2:7])[2:5]
    outputs = sorted((tmp_path / 'sr').iterdir())
    assert [path.name for path in outputs] == [path.name for path in frames]
    for output, frame in zip(outputs, expected):
        np.testing.assert_array_equal(cv2.imread(str(output)), frame)
    assert 'lr: 7 frames, 2 forwards' in capsys.readouterr().err


def test_video_tiles_give_every_frame_at_its_size(tmp_path, basicvsr_files):
    options, checkpoint, _ = basicvsr_files
    frames = write_images(tmp_path / 'lr' / 'clip', [(36, 44)] * 3, seed=4)
    main(['-opt', str(options), '--checkpoint', str(checkpoint), '--input', str(tmp_path / 'lr'),
          '--output', str(tmp_path / 'sr'), '--tile', '32', '--tile-overlap', '16'])
    outputs = sorted((tmp_path / 'sr' / 'clip').iterdir())
    assert [path.name for path in outputs] == [path.name for path in frames]
    assert all(cv2.imread(str(path)).shape == (144, 176, 3) for path in outputs)


def test_a_video_file_gives_the_outputs_of_a_folder_of_its_frames(tmp_path, basicvsr_files, capsys):
    options, checkpoint, _ = basicvsr_files
    video = write_video(tmp_path / 'clip.avi', 6, seed=5)
    (tmp_path / 'frames').mkdir()
    for index, frame in enumerate(read_frames(video)):  # the same decoded frames, as PNGs
        assert cv2.imwrite(str(tmp_path / 'frames' / f'{index:08d}.png'), frame)
    common = ['-opt', str(options), '--checkpoint', str(checkpoint), '--clip-length', '4', '--clip-overlap', '1',
              '--tile', '24', '--tile-overlap', '8']
    assert main([*common, '--input', str(video), '--output', str(tmp_path / 'from_video')]) == 0
    captured = capsys.readouterr()
    assert '[1/1] clip: 6 frames, 2 forwards' in captured.err and 'super-resolved 1 sequence, 6 frames' in captured.out
    assert '  clip: clip 1/2' in captured.err.splitlines() and '  clip: clip 2/2' in captured.err.splitlines()
    main([*common, '--input', str(tmp_path / 'frames'), '--output', str(tmp_path / 'from_frames')])
    names = [f'{index:08d}.png' for index in range(6)]
    assert sorted(path.name for path in (tmp_path / 'from_video').iterdir()) == names
    for name in names:
        from_video, from_frames = (cv2.imread(str(tmp_path / kind / name)) for kind in ('from_video', 'from_frames'))
        assert from_video.shape == (128, 160, 3)
        np.testing.assert_array_equal(from_video, from_frames)


def bad_video_cases():
    """(case, file name, what it holds, video model, words of the message)."""
    return [
        ('text renamed .mp4', 'notes.mp4', 'text', True, 'cannot decode video file'),
        ('video without frames', 'empty.avi', 0, True, 'cannot decode video file'),
        ('video for an image model', 'clip.avi', 3, False, 'an image model takes a folder of images'),
        ('unsupported suffix', 'clip.gif', 3, True, 'a video file ends in .mp4, .avi, .mkv, .mov, .webm'),
    ]


@pytest.mark.parametrize('case, name, content, video, words', bad_video_cases(),
                         ids=[case[0] for case in bad_video_cases()])
def test_bad_video_files_are_refused_before_anything_is_written(tmp_path, plain_files, basicvsr_files, capsys,
                                                                case, name, content, video, words):
    options, checkpoint, _ = basicvsr_files if video else plain_files
    path, output = tmp_path / name, tmp_path / 'sr'
    if content == 'text':
        path.write_text('not a video')
    else:
        write_video(tmp_path / 'written.avi', content).rename(path)
    with pytest.raises(SystemExit) as exit_info:
        main(['-opt', str(options), '--checkpoint', str(checkpoint), '--input', str(path), '--output', str(output)])
    assert exit_info.value.code == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]  # FFmpeg may log its own complaint above it
    assert message.startswith('python -m effsr_core.infer: error: argument --input: '), message
    assert words in message and str(path) in message, message
    assert not output.exists()


# ----- writes and refusals

def test_a_failed_run_leaves_whole_pngs_only(tmp_path, monkeypatch):
    write_images(tmp_path / 'lr', [(8, 8)] * 3)
    items = plan_images(tmp_path / 'lr', tmp_path / 'sr')
    (tmp_path / 'sr').mkdir()

    class FailsOnTheSecondImage(nn.Module):
        calls = 0

        def forward(self, x):
            self.calls += 1
            if self.calls == 2:
                raise RuntimeError('out of memory')
            return F.interpolate(x, scale_factor=2)

    with pytest.raises(RuntimeError, match='out of memory'):
        run_inference(FailsOnTheSecondImage(), items, video=False)
    assert [path.name for path in (tmp_path / 'sr').iterdir()] == ['00000000.png']

    def interrupted(descriptor):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, 'fsync', interrupted)  # the write is cut after the bytes, before the file is complete
    with pytest.raises(KeyboardInterrupt):
        run_inference(FailsOnTheSecondImage(), items[1:], video=False)
    assert [path.name for path in (tmp_path / 'sr').iterdir()] == ['00000000.png']  # no partial or temporary file


def bad_cases():
    """(case, extra arguments or files, option named, words of the message)."""
    return [
        ('input missing', {'input': 'missing'}, '--input', 'input folder not found'),
        ('input without images', {'input': 'empty'}, '--input', 'no images'),
        ('an image that is not one', {'input': 'text'}, '--input', 'holiday.png: not a readable image'),
        ('a video frame that is not one', {'video': True, 'input': 'text'}, '--input',
         'holiday.png: not a readable image'),
        ('two inputs, one output name', {'input': 'clash'}, '--input', 'would both be written to 00000000.png'),
        ('video frames of mixed sizes', {'video': True, 'input': 'mixed'}, '--input', 'differ in size'),
        ('video folder without frames', {'video': True, 'input': 'empty'}, '--input', 'no frames'),
        ('tile equal to the overlap', {'args': ['--tile', '16', '--tile-overlap', '16']}, '--tile',
         'must be larger than the tile overlap (16)'),
        ('tile smaller than the default overlap', {'args': ['--tile', '20']}, '--tile',
         'must be larger than the tile overlap (32)'),
        ('negative tile', {'args': ['--tile', '-8']}, '--tile', "expected an integer >= 0, got '-8'"),
        ('tile within the receptive field', {'args': ['--tile', '6', '--tile-overlap', '2']}, '--tile',
         'receptive field is wider than a 6-pixel tile'),
        ('negative overlap', {'args': ['--tile', '16', '--tile-overlap', '-2']}, '--tile-overlap',
         "expected an integer >= 0, got '-2'"),
        ('fade wider than the overlap', {'args': ['--tile', '16', '--tile-overlap', '4', '--tile-blend', '6']},
         '--tile-blend', 'cannot be wider than the tile overlap (4)'),
        ('clip length for an image model', {'args': ['--clip-length', '4']}, '--clip-length', 'only for video models'),
        ('clip too short for its context', {'video': True, 'args': ['--clip-length', '4', '--clip-overlap', '2']},
         '--clip-length', 'it needs more than 4'),
        ('checkpoint of another width', {'checkpoint': 'wide'}, '--checkpoint', 'wide.pth'),
        ('checkpoint missing', {'checkpoint': 'missing'}, '--checkpoint', 'missing.pth'),
        ('output is a file', {'output': 'file'}, '--output', 'is a file, not a folder'),
        ('output is the input', {'output': 'input'}, '--output', 'is the input folder'),
    ]


@pytest.mark.parametrize('case, setup, option, words', bad_cases(), ids=[case[0] for case in bad_cases()])
def test_bad_input_is_refused_naming_the_option_before_anything_is_written(tmp_path, plain_files, basicvsr_files,
                                                                           capsys, case, setup, option, words):
    options, checkpoint, _ = basicvsr_files if setup.get('video') else plain_files
    lr, sr = tmp_path / 'lr', tmp_path / 'sr'
    sr.mkdir()
    kind = setup.get('input')
    if kind == 'empty':
        lr.mkdir()
    elif kind == 'mixed':
        write_images(lr / '000', [(32, 32), (32, 32), (36, 32)])
    elif kind == 'clash':
        write_images(lr, [(8, 8)], ['.png'])
        write_images(lr, [(8, 8)], ['.jpg'])
    elif kind in (None, 'text'):
        write_images(lr / '000' if setup.get('video') else lr, [(32, 32)] * 5)
    if kind == 'text':  # sorts after the images: the good ones would be written first
        (lr / '000' if setup.get('video') else lr).joinpath('holiday.png').write_text('not an image')
    if setup.get('checkpoint') == 'wide':
        checkpoint = tmp_path / 'wide.pth'
        wide = PlainConvSR(**{**PLAIN, 'widths': [8, 16, 48]})
        torch.save({'params': wide.state_dict()}, checkpoint)
    elif setup.get('checkpoint') == 'missing':
        checkpoint = tmp_path / 'missing.pth'
    output = {'file': tmp_path / 'file.png', 'input': lr}.get(setup.get('output'), sr)
    if setup.get('output') == 'file':
        output.write_bytes(b'kept')
    before = sorted(path.name for path in lr.rglob('*')) if lr.exists() else None
    with pytest.raises(SystemExit) as exit_info:
        main(['-opt', str(options), '--checkpoint', str(checkpoint), '--input', str(lr), '--output', str(output),
              *setup.get('args', [])])
    assert exit_info.value.code == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message.startswith(f'python -m effsr_core.infer: error: argument {option}: '), message
    assert words in message, message
    assert list(sr.iterdir()) == []
    assert (sorted(path.name for path in lr.rglob('*')) if lr.exists() else None) == before
    if setup.get('output') == 'file':
        assert output.read_bytes() == b'kept'


@pytest.mark.skipif(torch.cuda.is_available(), reason='CUDA is available here')
def test_cuda_asked_without_cuda_is_refused(tmp_path, plain_files, capsys):
    options, checkpoint, _ = plain_files
    write_images(tmp_path / 'lr', [(8, 8)])
    with pytest.raises(SystemExit) as exit_info:
        main(['-opt', str(options), '--checkpoint', str(checkpoint), '--input', str(tmp_path / 'lr'),
              '--output', str(tmp_path / 'sr'), '--device', 'cuda'])
    assert exit_info.value.code == 2
    assert 'argument --device: CUDA is not available' in capsys.readouterr().err
    assert not (tmp_path / 'sr').exists()


def test_settings_refuse_what_the_command_line_cannot_parse():
    with pytest.raises(InferenceError, match='must be >= 0') as error:
        InferenceSettings(tile=-1).check()
    assert error.value.setting == 'tile'
    with pytest.raises(InferenceError) as error:
        InferenceSettings(tile=8, tile_overlap=8).check()
    assert error.value.setting == 'tile'
    InferenceSettings(tile=0, tile_overlap=32).check()  # no tiling: the overlap does not matter

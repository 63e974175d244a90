"""Super-resolve folders of images or video frames, or video files, with any network, framework-free (the command
line is ``effsr_core.infer``).

Planning comes first and writes nothing: ``plan_images`` / ``plan_video`` list what will be read and written and
refuse a missing or empty folder, a video file that cannot be decoded, a video clip whose frames differ in size, and
outputs that would overwrite inputs or land on a file. ``run_inference`` then reads, forwards and writes one item at
a time, each PNG through ``atomic_write``: a run that stops half-way leaves whole files only. A video file is one
sequence like a folder of its frames: planning decodes it once to count and size its frames, without keeping them,
and the run decodes it again into memory (a frame folder's sequence is read whole too).

Tiling (``tile_starts``, ``forward_tiled``): tiles of ``tile`` LR pixels, spread evenly so that neighbours share at
least ``overlap`` pixels; in the middle of each shared strip the output fades linearly from one tile to the next
over ``blend`` pixels, and outside the fade each output pixel comes from one tile only. An output pixel is then
taken only from tiles in which it lies at least ``(overlap - blend) // 2`` LR pixels away from the tile's inner
edges: for a network whose receptive field reaches no further than that, the tiled output is the untiled one (up
to float rounding). Video models are tiled spatially, all frames of a clip at once. A tile smaller than the network's
receptive field is refused before anything is written (``check_tile_fits``): on a random tile-sized input, a change
of the centre pixel must no longer move the outputs on the tile's border by more than ``RECEPTIVE_FIELD_SHARE`` of
its largest effect (an effective receptive field: recurrent and pooling networks reach everywhere, faintly). Tiles
are sized in LR pixels, so each maps to a whole number of output pixels at any integer scale.

Clips (``plan_clips``): a sequence longer than ``clip_length`` frames is forwarded in windows of that many frames;
each window keeps the frames that have ``clip_overlap`` frames of context on both sides (fewer only at the ends of
the sequence) and drops the outputs of the others, which a neighbouring window keeps.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from effsr_core.data.meta_info import image_shape
from effsr_core.images import IMAGE_SUFFIXES, bgr_to_tensor, image_files, read_bgr, tensor_to_bgr, write_png
from effsr_core.video_files import VIDEO_SUFFIXES, VideoDecodeError, frame_sizes, has_video_suffix, read_frames

DEFAULT_TILE_OVERLAP = 32
#: A centre-pixel change still moving the tile's border outputs by more than this share of its largest effect means
#: a receptive field wider than the tile.
RECEPTIVE_FIELD_SHARE = 1e-3
DEFAULT_CLIP_OVERLAP = 2


class InferenceError(ValueError):
    """Input, output or settings that cannot be super-resolved.

    Attributes:
        setting: What is at fault: 'input', 'output', 'tile', 'tile_overlap', 'tile_blend', 'clip_length',
            'clip_overlap' or 'model' (the command line names the matching option).
    """

    def __init__(self, message: str, setting: str):
        super().__init__(message)
        self.setting = setting


@dataclass(frozen=True)
class InferenceSettings:
    """How the network is applied.

    Attributes:
        tile: Tile size in LR pixels (0: the whole frame at once).
        tile_overlap: LR pixels that neighbouring tiles share, at least.
        tile_blend: Width of the fade between neighbouring tiles, in LR pixels (None: half the overlap).
        clip_length: Frames per forward of a video model (None: the whole sequence).
        clip_overlap: Frames of context a kept output frame has on each side (video models, clips only).
        device: Device the network runs on; outputs are gathered on the CPU.
    """
    tile: int = 0
    tile_overlap: int = DEFAULT_TILE_OVERLAP
    tile_blend: int | None = None
    clip_length: int | None = None
    clip_overlap: int = DEFAULT_CLIP_OVERLAP
    device: str = 'cpu'

    @property
    def blend(self) -> int:
        """The fade width in LR pixels, the default resolved."""
        return self.tile_overlap // 2 if self.tile_blend is None else self.tile_blend

    def check(self) -> None:
        """Refuse negative sizes, a tile not larger than its overlap, a fade wider than the overlap and clips
        too short for their context."""
        for setting in ('tile', 'tile_overlap', 'tile_blend', 'clip_overlap'):
            value = getattr(self, setting)
            if value is not None and value < 0:
                raise InferenceError(f'must be >= 0, got {value}', setting)
        if self.tile and self.tile <= self.tile_overlap:
            raise InferenceError(f'the tile ({self.tile}) must be larger than the tile overlap ({self.tile_overlap})',
                                 'tile')
        if self.blend > self.tile_overlap:
            raise InferenceError(f'the fade ({self.blend}) cannot be wider than the tile overlap '
                                 f'({self.tile_overlap})', 'tile_blend')
        if self.clip_length is not None and self.clip_length <= 2 * self.clip_overlap:
            raise InferenceError(f'a clip of {self.clip_length} frames cannot give its frames {self.clip_overlap} '
                                 f'frames of context on each side: it needs more than {2 * self.clip_overlap}',
                                 'clip_length')


@dataclass(frozen=True)
class InferenceItem:
    """One image, or one video sequence, and where its outputs go.

    Attributes:
        name: Image stem, sequence (clip folder) name or video file stem.
        inputs: The image, or the frames in order (none for a video file).
        outputs: One PNG per image or frame: the input's stem, or the frame's index in a video file.
        video_file: The video file the frames are decoded from, if any.
    """
    name: str
    inputs: tuple[Path, ...]
    outputs: tuple[Path, ...]
    video_file: Path | None = None


@dataclass(frozen=True)
class InferenceSummary:
    """What a run did: items (images or sequences), output frames, network forwards and wall-clock seconds."""
    items: int
    frames: int
    forwards: int
    seconds: float


@dataclass(frozen=True)
class ClipWindow:
    """Frames ``[start, stop)`` go through the network together; outputs ``[keep_start, keep_stop)`` are kept."""
    start: int
    stop: int
    keep_start: int
    keep_stop: int


def _listed_images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise InferenceError(f'input {"video file" if has_video_suffix(folder) else "folder"} not found: {folder}',
                             'input')
    return image_files(folder)


def _outputs_for(frames: Sequence[Path], folder: Path) -> tuple[Path, ...]:
    stems: dict[str, Path] = {}
    for frame in frames:
        if frame.stem in stems:
            raise InferenceError(f'{stems[frame.stem].name} and {frame.name} in {frame.parent} would both be written '
                                 f'to {frame.stem}.png', 'input')
        stems[frame.stem] = frame
    return tuple(folder / f'{frame.stem}.png' for frame in frames)


def plan_images(input_dir: str | Path, output_dir: str | Path) -> list[InferenceItem]:
    """One item per image directly inside ``input_dir``, written to ``output_dir/<stem>.png``.

    Raises:
        InferenceError: A missing folder, one without images, or two images with the same stem.
    """
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if input_dir.is_file():
        video = ' (a video file needs a video model)' if has_video_suffix(input_dir) else ''
        raise InferenceError(f'{input_dir} is a file{video}: an image model takes a folder of images '
                             f'({", ".join(IMAGE_SUFFIXES)})', 'input')
    files = _listed_images(input_dir)
    if not files:
        folders = ' (it holds folders: video frames need a video model)' if any(
            path.is_dir() for path in input_dir.iterdir()) else ''
        raise InferenceError(f'no images ({", ".join(IMAGE_SUFFIXES)}) in {input_dir}{folders}', 'input')
    outputs = _outputs_for(files, output_dir)
    items = [InferenceItem(file.stem, (file,), (output,)) for file, output in zip(files, outputs)]
    _check_outputs(items, input_dir, output_dir)
    return items


def plan_video(input_dir: str | Path, output_dir: str | Path) -> list[InferenceItem]:
    """The sequences of ``input_dir``: its frames when it holds images (written to ``output_dir/<frame>.png``),
    else one sequence per clip folder in it, REDS-style (written to ``output_dir/<clip>/<frame>.png``); or, when it
    is a video file (``VIDEO_SUFFIXES``), its decoded frames (written to ``output_dir/00000000.png``, ...).

    Frames are ordered by file name; every frame is opened (a video file decoded) here to check that a clip's frames
    share one size.

    Raises:
        InferenceError: A missing folder, no frames, a clip folder without frames, frames of mixed sizes in a clip,
            two frames with the same stem, a file without a video suffix, a video file that cannot be decoded.
    """
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if input_dir.is_file():
        item = _plan_video_file(input_dir, output_dir)
        _check_outputs([item], input_dir, output_dir)
        return [item]
    frames = _listed_images(input_dir)
    if frames:
        sequences = [(input_dir.name, frames, output_dir)]
    else:
        clips = sorted(path for path in input_dir.iterdir() if path.is_dir())
        if not clips:
            raise InferenceError(f'no frames ({", ".join(IMAGE_SUFFIXES)}) and no clip folders in {input_dir}',
                                 'input')
        sequences = [(clip.name, image_files(clip), output_dir / clip.name) for clip in clips]
    items = []
    for name, frames, folder in sequences:
        if not frames:
            raise InferenceError(f'clip folder {input_dir / name} holds no frames ({", ".join(IMAGE_SUFFIXES)})',
                                 'input')
        _check_one_size(frames)
        items.append(InferenceItem(name, tuple(frames), _outputs_for(frames, folder)))
    _check_outputs(items, input_dir, output_dir)
    return items


def _plan_video_file(path: Path, output_dir: Path) -> InferenceItem:
    """One sequence of the frames decoded from the video file ``path``, written to ``output_dir/<index>.png``."""
    if not has_video_suffix(path):
        raise InferenceError(f'unsupported file {path}: a video file ends in {", ".join(VIDEO_SUFFIXES)} (or give a '
                             f'folder of frames or of clip folders)', 'input')
    try:
        sizes = frame_sizes(path)
    except VideoDecodeError as error:
        raise InferenceError(str(error), 'input') from None
    if len(set(sizes)) > 1:
        first = {size: sizes.index(size) for size in dict.fromkeys(sizes)}
        examples = ', '.join(f'frame {index} is {height}x{width}' for (height, width), index in list(first.items())[:2])
        raise InferenceError(f'the frames of {path} differ in size ({examples}); a clip is forwarded as one tensor',
                             'input')
    outputs = tuple(output_dir / f'{index:08d}.png' for index in range(len(sizes)))
    return InferenceItem(path.stem, (), outputs, video_file=path)


def _check_one_size(frames: Sequence[Path]) -> None:
    sizes: dict[tuple[int, int], Path] = {}
    for frame in frames:
        try:
            sizes.setdefault(tuple(image_shape(frame)[:2]), frame)
        except FileNotFoundError as error:
            raise InferenceError(str(error), 'input') from None
    if len(sizes) > 1:
        examples = ', '.join(f'{path.name} is {h}x{w}' for (h, w), path in list(sizes.items())[:2])
        raise InferenceError(f'the frames of {frames[0].parent} differ in size ({examples}); a clip is forwarded '
                             f'as one tensor', 'input')


def _check_outputs(items: Sequence[InferenceItem], input_dir: Path, output_dir: Path) -> None:
    """Refuse an output folder that is a file or the input folder, and outputs that would replace an input or a
    folder."""
    if output_dir.exists() and not output_dir.is_dir():
        raise InferenceError(f'{output_dir} is a file, not a folder', 'output')
    if output_dir.resolve() == input_dir.resolve():
        raise InferenceError(f'{output_dir} is the input folder: write the outputs elsewhere', 'output')
    inputs = {path.resolve() for item in items for path in item.inputs}
    for item in items:
        for path in item.outputs:
            if path.parent.exists() and not path.parent.is_dir():
                raise InferenceError(f'{path.parent} is a file, not a folder', 'output')
            if path.is_dir():
                raise InferenceError(f'{path} is a folder', 'output')
            if path.resolve() in inputs:
                raise InferenceError(f'{path} would overwrite an input', 'output')


def plan_clips(frames: int, clip_length: int | None = None, clip_overlap: int = DEFAULT_CLIP_OVERLAP
               ) -> list[ClipWindow]:
    """Windows of ``clip_length`` frames over a sequence of ``frames``; their kept ranges cover every frame once.

    Each kept frame has ``clip_overlap`` frames of context on each side inside its window, fewer only where the
    sequence ends; the windows are ``clip_length - 2 * clip_overlap`` frames apart, except the last, which ends
    with the sequence.

    Args:
        frames: Length of the sequence.
        clip_length: Frames per window (None, or at least ``frames``: one window).
        clip_overlap: Frames of context on each side; ``clip_length`` must exceed twice this.
    """
    if clip_length is None or clip_length >= frames:
        return [ClipWindow(0, frames, 0, frames)]
    if clip_length <= 2 * clip_overlap:
        raise InferenceError(f'a clip of {clip_length} frames needs more than twice the clip overlap '
                             f'({clip_overlap})', 'clip_length')
    windows, keep_start = [], 0
    while keep_start < frames:
        start = max(0, min(keep_start - clip_overlap, frames - clip_length))
        stop = start + clip_length
        keep_stop = frames if stop >= frames else stop - clip_overlap
        windows.append(ClipWindow(start, stop, keep_start, keep_stop))
        keep_start = keep_stop
    return windows


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Starts of the fewest tiles of ``tile`` pixels that cover ``[0, length)`` with neighbours sharing at least
    ``overlap`` pixels, spread evenly (the first starts at 0, the last ends at ``length``).

    A length that fits in one tile, or ``tile`` 0, gives one tile at 0.
    """
    if tile <= 0 or length <= tile:
        return [0]
    count = -(-(length - overlap) // (tile - overlap))  # the fewest n with n * tile - (n - 1) * overlap >= length
    span = length - tile
    return [(index * span + (count - 1) // 2) // (count - 1) for index in range(count)]


def _fade_in(positions: torch.Tensor, seam: float, width: float) -> torch.Tensor:
    """0 before ``seam - width / 2``, 1 after ``seam + width / 2``, linear between (a step at ``seam`` for 0)."""
    if width <= 0:
        return (positions >= seam).double()
    return ((positions - seam) / width + 0.5).clamp(0, 1)


def tile_weights(starts: Sequence[int], tile: int, blend: int, scale: int) -> list[torch.Tensor]:
    """Weights of each tile's output along one axis (``tile * scale`` output pixels each): 1 inside, fading over
    ``blend`` LR pixels centred on the middle of the strip shared with each neighbour; those of two neighbours add
    up to 1 across their seam."""
    centres = torch.arange(tile * scale, dtype=torch.float64) + 0.5
    seams = [(starts[index] + tile + starts[index + 1]) * scale / 2 for index in range(len(starts) - 1)]
    weights = []
    for index, start in enumerate(starts):
        positions = start * scale + centres
        weight = torch.ones_like(positions)
        if index > 0:
            weight *= _fade_in(positions, seams[index - 1], blend * scale)
        if index < len(starts) - 1:
            weight *= 1 - _fade_in(positions, seams[index], blend * scale)
        weights.append(weight.float())
    return weights


def _forward(model: nn.Module, inputs: torch.Tensor, tiled: bool) -> tuple[torch.Tensor, int]:
    """The network's output for ``inputs`` on the CPU, and its integer scale; refuses other output layouts."""
    output = model(inputs)
    if not isinstance(output, torch.Tensor) or output.dim() != inputs.dim() or output.shape[:-3] != inputs.shape[:-3]:
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise InferenceError(f'the network turned an input of {tuple(inputs.shape)} into {shape}: inference needs '
                             f'one output frame per input frame (sliding-window video models such as EDVR return '
                             f'one)', 'model')
    (height, width), (out_height, out_width) = inputs.shape[-2:], output.shape[-2:]
    scale = out_height // height
    if out_height != scale * height or out_width != scale * width or scale < 1:
        hint = ('; choose a --tile the network accepts' if tiled else '')
        raise InferenceError(f'the network turned a {height}x{width} input into {out_height}x{out_width}, not one '
                             f'integer scale{hint}', 'tile' if tiled else 'model')
    return output.detach().float().cpu(), scale


def forward_tiled(model: nn.Module, inputs: torch.Tensor, tile: int = 0, overlap: int = DEFAULT_TILE_OVERLAP,
                  blend: int | None = None) -> torch.Tensor:
    """The network's output for ``inputs`` computed tile by tile (see the module docstring), on the CPU.

    Args:
        model: The network, in eval mode, on the device of ``inputs``.
        inputs: (b, c, h, w) for an image model or (b, t, c, h, w) for a video model.
        tile: Tile size in LR pixels (0, or a frame that fits in one tile: one forward).
        overlap: LR pixels that neighbouring tiles share, at least; smaller than ``tile``.
        blend: Width of the fade between tiles in LR pixels (None: ``overlap // 2``).

    Returns:
        The output, (b, c, s*h, s*w) or (b, t, c, s*h, s*w) for the network's scale s.
    """
    height, width = inputs.shape[-2:]
    rows, columns = tile_starts(height, tile, overlap), tile_starts(width, tile, overlap)
    if len(rows) == len(columns) == 1:
        return _forward(model, inputs, tiled=False)[0]
    blend = overlap // 2 if blend is None else blend
    tile_height, tile_width = min(tile, height), min(tile, width)
    output = weight_sum = row_weights = column_weights = scale = None
    for row, top in enumerate(rows):
        for column, left in enumerate(columns):
            piece, piece_scale = _forward(model, inputs[..., top:top + tile_height, left:left + tile_width], True)
            if output is None:
                scale = piece_scale
                output = piece.new_zeros((*piece.shape[:-2], height * scale, width * scale))
                weight_sum = piece.new_zeros((height * scale, width * scale))
                row_weights = tile_weights(rows, tile_height, blend, scale)
                column_weights = tile_weights(columns, tile_width, blend, scale)
            elif piece_scale != scale:
                raise InferenceError(f'the network gave tiles of one size different scales ({scale}, {piece_scale})',
                                     'tile')
            weight = row_weights[row][:, None] * column_weights[column][None, :]
            window = (slice(top * scale, (top + tile_height) * scale), slice(left * scale, (left + tile_width) * scale))
            output[(..., *window)] += piece * weight
            weight_sum[window] += weight
    return output / weight_sum


def border_share(model: nn.Module, tile: int, frames: int = 0, channels: int = 3, device: str = 'cpu') -> float:
    """How much a change of the centre pixel of a random ``tile`` x ``tile`` input (``frames`` > 0: a clip, every
    frame changed) moves the outputs on the tile's border (its outermost LR pixel, scaled): their largest summed
    absolute change over the largest one anywhere."""
    shape = (1, frames, channels, tile, tile) if frames else (1, channels, tile, tile)
    inputs = torch.rand(shape, generator=torch.Generator().manual_seed(0)).to(device)
    changed = inputs.clone()
    changed[..., tile // 2, tile // 2] = 1 - changed[..., tile // 2, tile // 2]
    with torch.no_grad():
        effect = (model(changed) - model(inputs)).abs().float()
    effect = effect.sum(dim=tuple(range(effect.dim() - 2)))  # (H, W)
    scale = max(effect.shape[-1] // tile, 1)
    border = torch.cat([effect[:scale].flatten(), effect[-scale:].flatten(), effect[:, :scale].flatten(),
                        effect[:, -scale:].flatten()])
    largest = effect.max().item()
    return border.max().item() / largest if largest > 0 else 0.0


def check_tile_fits(model: nn.Module, settings: InferenceSettings, video: bool, channels: int = 3) -> None:
    """Refuse a ``settings.tile`` smaller than the network's receptive field (see the module docstring), or one the
    network cannot run on; nothing to check without tiling.

    Raises:
        InferenceError: naming the ``tile`` setting.
    """
    if not settings.tile:
        return
    model = model.to(settings.device).eval()
    try:
        share = border_share(model, settings.tile, 2 if video else 0, channels, settings.device)
    except Exception as error:  # any failure of the network itself on a tile-sized input
        raise InferenceError(f'the network cannot run on a {settings.tile}x{settings.tile} tile: '
                             f'{str(error).splitlines()[0] if str(error) else type(error).__name__}', 'tile') from None
    if share > RECEPTIVE_FIELD_SHARE:
        raise InferenceError(f'the network\'s receptive field is wider than a {settings.tile}-pixel tile: a change at '
                             f'its centre still moves its border outputs by {share:.1%} of its largest effect (at '
                             f'most {RECEPTIVE_FIELD_SHARE:.1%}); use a larger --tile, or 0 for whole frames', 'tile')


def _read_item(item: InferenceItem) -> list[np.ndarray]:
    """The item's images or frames, uint8 HWC BGR: read from its files, or decoded from its video file."""
    if item.video_file is None:
        return [read_bgr(path) for path in item.inputs]
    try:
        frames = read_frames(item.video_file)
    except VideoDecodeError as error:  # planning decoded it; the file may have changed since
        raise InferenceError(str(error), 'input') from None
    if len(frames) != len(item.outputs):
        raise InferenceError(f'{item.video_file} gave {len(frames)} frames, {len(item.outputs)} when planned',
                             'input')
    return frames


#: Told after each clip window of a sequence: (item, windows done, windows in the item).
WindowProgress = Callable[[InferenceItem, int, int], None]


def _super_resolve(model: nn.Module, item: InferenceItem, video: bool, settings: InferenceSettings,
                   window_progress: WindowProgress | None = None) -> int:
    """Read one item, forward it (in clips for a video model) and write its outputs; returns the forwards."""
    frames = _read_item(item)
    if len({frame.shape for frame in frames}) > 1:  # planning checked the sizes; the files may have changed since
        raise InferenceError(f'the frames of {item.name} differ in size', 'input')
    sequence = torch.stack([bgr_to_tensor(frame) for frame in frames])  # (t, c, h, w)
    windows = (plan_clips(len(frames), settings.clip_length, settings.clip_overlap) if video
               else [ClipWindow(0, 1, 0, 1)])
    for done, window in enumerate(windows, 1):
        inputs = sequence[window.start:window.stop] if video else sequence[0]
        with torch.no_grad():
            output = forward_tiled(model, inputs.unsqueeze(0).to(settings.device), settings.tile,
                                   settings.tile_overlap, settings.blend)[0]
        for index in range(window.keep_start, window.keep_stop):
            item.outputs[index].parent.mkdir(parents=True, exist_ok=True)
            write_png(tensor_to_bgr(output[index - window.start] if video else output), item.outputs[index])
        if window_progress is not None and len(windows) > 1:
            window_progress(item, done, len(windows))
    return len(windows)


def run_inference(model: nn.Module, items: Sequence[InferenceItem], video: bool,
                  settings: InferenceSettings = InferenceSettings(),
                  progress: Callable[[int, int, InferenceItem, int, float], None] | None = None,
                  window_progress: WindowProgress | None = None) -> InferenceSummary:
    """Super-resolve every item and write its PNGs (each atomically).

    Args:
        model: The network (moved to ``settings.device`` and switched to eval mode here).
        items: From ``plan_images`` (image model) or ``plan_video`` (video model).
        video: Whether the network takes (b, t, c, h, w) sequences.
        settings: Tiling, clips and device.
        progress: Called after each item with (position from 1, number of items, item, forwards, seconds).
        window_progress: Called after each clip window of a sequence forwarded in several.

    Returns:
        The counts and the wall-clock time.
    """
    settings.check()
    model = model.to(settings.device).eval()
    started = time.perf_counter()
    forwards = 0
    for position, item in enumerate(items, 1):
        item_started = time.perf_counter()
        item_forwards = _super_resolve(model, item, video, settings, window_progress)
        forwards += item_forwards
        if progress is not None:
            progress(position, len(items), item, item_forwards, time.perf_counter() - item_started)
    return InferenceSummary(items=len(items), frames=sum(len(item.outputs) for item in items), forwards=forwards,
                            seconds=time.perf_counter() - started)

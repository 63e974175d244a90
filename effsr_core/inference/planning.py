"""What will be read and written, decided before anything is: ``plan_images`` / ``plan_video`` refuse a missing or
empty folder, a video file that cannot be decoded, a clip whose frames differ in size, and outputs that would
overwrite inputs or land on a file. Writes nothing."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from effsr_core.data.meta_info import image_shape
from effsr_core.images import IMAGE_SUFFIXES, image_files
from effsr_core.inference.settings import InferenceError
from effsr_core.video_files import VIDEO_SUFFIXES, VideoDecodeError, frame_sizes, has_video_suffix


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
        InferenceError: A missing folder, one without images, an image that cannot be decoded, or two images with
            the same stem.
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
    for file in files:
        _check_readable(file)
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


def _check_readable(image: Path) -> tuple[int, int]:
    """The (h, w) of an image or frame, which is decoded to know it; one that cannot be is refused."""
    try:
        return tuple(image_shape(image)[:2])
    except FileNotFoundError as error:
        raise InferenceError(str(error), 'input') from None


def _check_one_size(frames: Sequence[Path]) -> None:
    sizes: dict[tuple[int, int], Path] = {}
    for frame in frames:
        sizes.setdefault(_check_readable(frame), frame)
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

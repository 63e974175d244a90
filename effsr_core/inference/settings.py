"""How a network is applied to the inputs (tiles, clips, device), and the error every step of inference raises."""
from __future__ import annotations

from dataclasses import dataclass

DEFAULT_TILE_OVERLAP = 32
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

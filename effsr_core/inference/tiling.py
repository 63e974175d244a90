"""Tiled forwards (``tile_starts``, ``tile_weights``, ``forward_tiled``) and the receptive-field check of a tile
(``border_share``, ``check_tile_fits``); see the package docstring for the rules."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from effsr_core.inference.settings import DEFAULT_TILE_OVERLAP, InferenceError, InferenceSettings

#: A centre-pixel change still moving the tile's border outputs by more than this share of its largest effect means
#: a receptive field wider than the tile.
RECEPTIVE_FIELD_SHARE = 1e-3


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

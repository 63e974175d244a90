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

Modules: ``settings`` (settings and the error), ``planning`` (inputs and outputs), ``tiling`` (tiles and the
receptive-field check), ``run`` (clip windows and the run loop).
"""
from effsr_core.inference.planning import InferenceItem, plan_images, plan_video
from effsr_core.inference.run import ClipWindow, InferenceSummary, plan_clips, run_inference
from effsr_core.inference.settings import DEFAULT_CLIP_OVERLAP, DEFAULT_TILE_OVERLAP, InferenceError, InferenceSettings
from effsr_core.inference.tiling import (RECEPTIVE_FIELD_SHARE, border_share, check_tile_fits, forward_tiled,
                                         tile_starts, tile_weights)

__all__ = ['InferenceItem', 'plan_images', 'plan_video', 'ClipWindow', 'InferenceSummary', 'plan_clips',
           'run_inference', 'DEFAULT_CLIP_OVERLAP', 'DEFAULT_TILE_OVERLAP', 'InferenceError', 'InferenceSettings',
           'RECEPTIVE_FIELD_SHARE', 'border_share', 'check_tile_fits', 'forward_tiled', 'tile_starts', 'tile_weights']

"""Checkpoint files, framework-free: safe reading (``reading``), atomic writing (``writing``) and loading weights
with clear mismatch errors (``fitting``)."""
from effsr_core.checkpoints.fitting import LoadReport, guess_architecture, load_weights
from effsr_core.checkpoints.reading import (CHECKPOINT_PREFIXES, MMENGINE_HISTORY_BUFFER, TRUST_ENV, CheckpointError,
                                            attribute_getter, generator_state, load_file, numpy_globals,
                                            read_generator_state, trust_checkpoints, weights_reading_globals)
from effsr_core.checkpoints.writing import atomic_write, save_atomic, staged_path

__all__ = ['CHECKPOINT_PREFIXES', 'MMENGINE_HISTORY_BUFFER', 'TRUST_ENV', 'CheckpointError', 'LoadReport',
           'atomic_write', 'attribute_getter', 'generator_state', 'guess_architecture', 'load_file', 'load_weights',
           'numpy_globals', 'read_generator_state', 'save_atomic', 'staged_path', 'trust_checkpoints',
           'weights_reading_globals']

"""A measured device cost model (framework-free): a per-call latency table cached per device, thread count,
backend and library versions, and the latency of a whole network predicted as the sum of its calls' entries.

``calls`` records what a forward runs and replays one call alone; ``device_key`` names the backends and the
cache key; ``table`` measures, caches and refuses tables of another key; ``prediction`` traces a network and sums;
``staircase`` reads which widths a device runs well from a layer's latency against its width.
The idea of a per-layer latency lookup table follows HALP (Shen et al., NeurIPS 2022). See docs/cost_model.md.
"""
from effsr_core.cost_model.calls import CallRecorder, OpCall, UnreplayableCall, conv_fields, replay_arguments
from effsr_core.cost_model.device_key import (BACKENDS, CostBackend, CostModelError, get_backend, key_difference,
                                              table_key)
from effsr_core.cost_model.prediction import (NetworkTrace, Prediction, frames_of, predict_calls, predict_latency,
                                              trace_network)
from effsr_core.cost_model.staircase import (candidate_widths, conv_probe, fastest_widths, layer_width_choice,
                                             width_latencies)
from effsr_core.cost_model.table import CostTable, Timer, default_table_path, time_call

__all__ = ['BACKENDS', 'CallRecorder', 'CostBackend', 'CostModelError', 'CostTable', 'NetworkTrace', 'OpCall',
           'Prediction', 'Timer', 'UnreplayableCall', 'candidate_widths', 'conv_fields', 'conv_probe',
           'default_table_path', 'fastest_widths', 'frames_of', 'get_backend', 'key_difference', 'layer_width_choice',
           'predict_calls', 'predict_latency', 'replay_arguments', 'table_key', 'time_call', 'trace_network',
           'width_latencies']

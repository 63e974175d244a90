"""Efficiency profiler following the NTIRE efficient-SR challenge protocol (see ``effsr_core.profile`` for the CLI).

One module per measure: ``counting`` (parameters, MACs/FLOPs, NTIRE FLOPs, activations, #conv), ``memory`` (peak
memory), ``timing`` (best-of-trials runtime), ``quality`` (PSNR / SSIM over a dataset), ``ranking`` (NTIRE sum of
ranks), ``scoring`` (NTIRE 2024-2026 score), ``report`` (table and JSON) and ``plot`` (the comparison as a PNG);
``profiler`` runs them on one network (networks are built from options files by ``effsr_core.networks``).
"""
from effsr_core.profiling.counting import OpCount, OpReport, ParamCount, count_ops, count_parameters
from effsr_core.profiling.memory import MemoryResult, measure_peak_memory
from effsr_core.profiling.profiler import ProfileSettings, profile_model
from effsr_core.profiling.quality import PairedImageFolders, QualityResult, VideoClipFolders, evaluate_quality
from effsr_core.profiling.ranking import Ranking, format_ranking, rank_models
from effsr_core.profiling.report import build_report, format_table, read_json, write_json
from effsr_core.profiling.timing import RuntimeResult, measure_runtime

__all__ = ['OpCount', 'OpReport', 'ParamCount', 'count_ops', 'count_parameters', 'MemoryResult', 'measure_peak_memory',
           'ProfileSettings', 'profile_model',
           'PairedImageFolders', 'QualityResult', 'VideoClipFolders', 'evaluate_quality', 'Ranking', 'format_ranking',
           'rank_models', 'build_report', 'format_table', 'read_json', 'write_json', 'RuntimeResult',
           'measure_runtime']

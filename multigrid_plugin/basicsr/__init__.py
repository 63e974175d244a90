"""Multigrid in BasicSR (imported by ``effsr_core.basicsr`` when it registers plugins): one ``multigrid`` section
turns it on for any video model (VideoRecurrentModel, EDVRModel: spatial only, SSLPruningModel's fine-tuning).

Importing this package wraps BasicSR's train loader and model builders (``pipeline``) and declares the section to
the options check as a pipeline section for every model derived from ``VideoBaseModel``.
"""
from effsr_core.basicsr.options_check import PipelineSection, register_pipeline_section
from multigrid_plugin.basicsr.checks import check_multigrid_options
from multigrid_plugin.basicsr.pipeline import install
from multigrid_plugin.lr_schedule import MultigridLR
from multigrid_plugin.options import MULTIGRID

register_pipeline_section(PipelineSection(MULTIGRID, model_bases=('VideoBaseModel',), check=check_multigrid_options,
                                          schedulers=(MultigridLR.__name__,)))
install()

__all__ = ['install']

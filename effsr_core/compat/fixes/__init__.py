"""The individual environment fixes, one module per toolbox; ``effsr_core.compat`` decides when each one runs.

Every function is idempotent and returns a truthy value only when it changed something. Fixes import torch and the
toolboxes when they run, never at interpreter start (the start-up hook imports ``effsr_core.compat``).
"""
from effsr_core.compat.fixes.for_basicsr import (basicsr_checkpoints, basicsr_cpu_distributed_init,
                                                 basicsr_cpu_model_to_device, basicsr_resume_state,
                                                 basicsr_spynet_small_frames, basicsr_state_globals,
                                                 basicsr_nondist_validation, basicsr_video_validation,
                                                 latest_good_state)
from effsr_core.compat.fixes.for_dependencies import diffusers_pytree_deprecation, pkg_resources_deprecation
from effsr_core.compat.fixes.for_mim import mim_refused_run
from effsr_core.compat.fixes.for_mmengine import (mmengine_atomic_put, mmengine_paramwise_summary,
                                                  mmengine_runner_checkpoint_name, mmengine_safe_load,
                                                  mmengine_shape_check, mmengine_state_globals)
from effsr_core.compat.fixes.for_torch import (cpu_deform_conv2d, functional_tensor_alias, mmcv_ext_stub, numpy_bool8,
                                               restore_register_fake, tolerate_missing_torchvision_ops)
from effsr_core.compat.fixes.marks import _is_patched, _mark  # noqa: F401  (tests check the marks)

__all__ = ['basicsr_checkpoints', 'basicsr_cpu_distributed_init', 'basicsr_cpu_model_to_device',
           'basicsr_nondist_validation', 'basicsr_resume_state', 'basicsr_spynet_small_frames', 'basicsr_state_globals',
           'basicsr_video_validation', 'latest_good_state', 'diffusers_pytree_deprecation', 'pkg_resources_deprecation',
           'mim_refused_run', 'mmengine_atomic_put', 'mmengine_paramwise_summary', 'mmengine_runner_checkpoint_name',
           'mmengine_safe_load', 'mmengine_shape_check', 'mmengine_state_globals', 'cpu_deform_conv2d',
           'functional_tensor_alias', 'mmcv_ext_stub', 'numpy_bool8', 'restore_register_fake',
           'tolerate_missing_torchvision_ops']

# Multigrid training (Lin et al.) for an MMagic video SR config: the paper's settings as one `multigrid` dict, written
# once, to the hook MultigridHook (data shapes); the LR scheduler MultigridLR takes no multigrid keys: the hook binds
# it to the same settings (Eq. 1). In the experiment config, after listing this file among its bases:
#   multigrid = dict(_base_.multigrid, spatial_sizes=[32, 64], temporal_sizes=[7, 11, 15])  # change what differs
#   custom_hooks = [dict(type='MultigridHook', **multigrid)]  # begin=<iterations before the schedule starts>
#   param_scheduler = dict(type='MultigridLR', by_epoch=False)
#   train_cfg = dict(max_iters=max_iters)  # the schedule spans max_iters - begin iterations
# Null cycles are derived from the train pipeline (PairedRandomCrop gt_patch_size / scale, num_input_frames) by
# the hook. Large minibatches: the linear scaling rule via mmengine's auto_scale_lr (the LR written in optim_wrapper
# is the one for base_batch_size samples; mmengine scales it to GPUs x batch_size before the schedulers are built),
# and a linear warmup (warmup_iter) that MultigridLR applies itself.

multigrid = dict(
    spatial_sizes=None,  # LR patch sizes, e.g. [32, 64]
    temporal_sizes=None,  # frames per clip, e.g. [7, 11, 15] (REDS) or [6, 10, 14] (Vimeo-90K)
    order='hierarchical',  # a temporal cycle inside each spatial stage (the paper)
    mode='spatial_temporal',  # 'spatial' for sliding-window models (EDVR)
    stage_iters=None,  # equal stages
    warmup_iter=5000,
    eta_min=0.0,
    form='cosine')

# The fixed-size large-minibatch baseline of basicvsr_multigrid_reds.py (Table 1 (8)): 64 LR px x 15 frames
# throughout, same batch, LR scaling and warmup (MultigridLR with a single stage is cosine annealing with warmup).
_base_ = ['./basicvsr_multigrid_reds.py']

experiment_name = 'basicvsr_fixed_reds'
work_dir = f'./work_dirs/{experiment_name}'
multigrid = dict(_base_.multigrid, spatial_sizes=[64], temporal_sizes=[15])
custom_hooks = [dict(type='MultigridHook', **multigrid)]

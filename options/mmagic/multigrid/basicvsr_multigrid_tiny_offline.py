# Multigrid on the bundled offline clips: a tiny BasicVSR (MMagic's own model) trained 16 -> 32 LR px x 3 -> 5
# frames in four stages, in about a minute on two CPU cores. The schedule's picture: work_dir/multigrid_schedule.png
#   python -m effsr_core.data.make_offline_data
#   mim train mmagic options/mmagic/multigrid/basicvsr_multigrid_tiny_offline.py
_base_ = ['../_base_/offline_reds_tiny.py', './_base_/multigrid.py']

experiment_name = 'demo_basicvsr_multigrid_tiny_offline'
work_dir = f'./work_dirs/{experiment_name}'
max_iters = 40

multigrid = dict(_base_.multigrid, spatial_sizes=[16, 32], temporal_sizes=[3, 5], warmup_iter=4)
custom_hooks = [dict(type='MultigridHook', **multigrid)]
param_scheduler = dict(type='MultigridLR', by_epoch=False)  # bound to the hook's settings

model = dict(
    type='BasicVSR',
    generator=dict(type='SSLBasicVSR', num_feat=8, num_block=1, spynet_path=None),
    pixel_loss=dict(type='CharbonnierLoss', loss_weight=1.0, reduction='mean'),
    train_cfg=dict(fix_iter=0),
    data_preprocessor=dict(type='DataPreprocessor', mean=[0., 0., 0.], std=[255., 255., 255.]))

train_dataloader = dict(batch_size=2, num_workers=2)
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_dataloader = dict(dataset=dict(num_input_frames=10, fixed_seq_len=100))  # keep validation short

optim_wrapper = dict(
    constructor='DefaultOptimWrapperConstructor',
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=5e-4, betas=(0.9, 0.99)),
    paramwise_cfg=dict(custom_keys={'spynet': dict(lr_mult=0.125)}))

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=5),
    checkpoint=dict(type='CheckpointHook', interval=20, by_epoch=False, max_keep_ckpts=2, save_best=None,
                    out_dir=None))

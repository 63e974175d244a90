# The main job's small BasicVSR, trained with MMagic's own BasicVSR model and runner:
#   mim train mmagic options/mmagic/demo/basicvsr_tiny_offline.py
# The generator is the plugin's SSLBasicVSR (registered through custom_imports): with its scaling factors at 1
# it is exactly BasicVSRNet, and its checkpoints feed the SSL pruning configs.
_base_ = ['../_base_/offline_reds_tiny.py']

experiment_name = 'demo_basicvsr_tiny_offline'
work_dir = f'./work_dirs/{experiment_name}'

model = dict(
    type='BasicVSR',
    generator=dict(type='SSLBasicVSR', num_feat=16, num_block=2, spynet_path=None),
    pixel_loss=dict(type='CharbonnierLoss', loss_weight=1.0, reduction='mean'),
    train_cfg=dict(fix_iter=0),
    data_preprocessor=dict(type='DataPreprocessor', mean=[0., 0., 0.], std=[255., 255., 255.]))

train_cfg = dict(type='IterBasedTrainLoop', max_iters=300, val_interval=150)

optim_wrapper = dict(
    constructor='DefaultOptimWrapperConstructor',
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=5e-4, betas=(0.9, 0.99)),
    paramwise_cfg=dict(custom_keys={'spynet': dict(lr_mult=0.125)}))

param_scheduler = dict(type='CosineRestartLR', by_epoch=False, periods=[300], restart_weights=[1], eta_min=1e-6)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=25),
    checkpoint=dict(type='CheckpointHook', interval=150, by_epoch=False, max_keep_ckpts=2, save_best=None,
                    out_dir=None))

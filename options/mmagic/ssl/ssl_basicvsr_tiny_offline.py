# SSL pruning in MMagic, on the bundled offline clips: prunes the main job's small BasicVSR (a BasicSR checkpoint,
# read by SSLBasicVSR's `pretrained`) at ratio 0.5: select -> regularise -> prune -> fine-tune with TF.
#   mim train mmagic options/mmagic/ssl/ssl_basicvsr_tiny_offline.py
_base_ = ['../_base_/offline_reds_tiny.py']

experiment_name = 'demo_ssl_basicvsr_tiny_offline'
work_dir = f'./work_dirs/{experiment_name}'

model = dict(
    type='SSLPruningVSR',
    generator=dict(type='SSLBasicVSR', num_feat=16, num_block=2, spynet_path=None,
                   pretrained='experiments/demo_BasicVSR_tiny_offline/models/net_g_latest.pth'),
    pixel_loss=dict(type='CharbonnierLoss', loss_weight=1.0, reduction='mean'),
    # the element-mean squared form: the best TF form measured (benchmarks/results/ssl_quality_tf_*.md)
    tf_loss=dict(type='TemporalFinetuneLoss', loss_weight=1.0, norm='mse'),
    pruning=dict(method='ssl', ratio=0.5, selection='min_global', round_to=None,
                 regularization=dict(delta=1e-2, tau=0.1, t1=4, t2=20)),  # 60 regularisation iterations
    data_preprocessor=dict(type='DataPreprocessor', mean=[0., 0., 0.], std=[255., 255., 255.]))

custom_hooks = [dict(type='SSLPruningHook', curve_interval=10)]

train_cfg = dict(type='IterBasedTrainLoop', max_iters=120, val_interval=1000)

optim_wrapper = dict(
    constructor='DefaultOptimWrapperConstructor',
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=2e-4, betas=(0.9, 0.99)),
    # SpyNet at 1/8 of the LR (paper); scaling factors 100x faster so 60 iterations can drive them to zero
    paramwise_cfg=dict(custom_keys={'spynet': dict(lr_mult=0.125), '_scale': dict(lr_mult=100.)}))

# The fine-tuning schedule: SSLPruningHook holds the LR constant while regularising and starts this at pruning.
param_scheduler = dict(type='CosineRestartLR', by_epoch=False, periods=[60], restart_weights=[1], eta_min=1e-7)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=60, by_epoch=False, max_keep_ckpts=3, save_best=None,
                    out_dir=None))
find_unused_parameters = True  # SpyNet is frozen while regularising
# the mean scaling factors of pruned / kept units (gamma_pruned, gamma_kept) go to TensorBoard too
vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
visualizer = dict(vis_backends=vis_backends)

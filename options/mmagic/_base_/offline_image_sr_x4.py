# Shared pieces of the MMagic single-image x4 demos on the bundled offline photos (data/offline/image_sr, DIV2K
# layout): datasets, pipelines, evaluator, loops and runtime. Make the data first:
#   python -m effsr_core.data.make_offline_data
_base_ = ['mmagic::_base_/default_runtime.py']

custom_imports = dict(imports=['effsr_core.mmagic'], allow_failed_imports=False)

scale = 4
data_root = 'data/offline/image_sr'

train_pipeline = [
    dict(type='LoadImageFromFile', key='img', channel_order='rgb'),
    dict(type='LoadImageFromFile', key='gt', channel_order='rgb'),
    dict(type='SetValues', dictionary=dict(scale=scale)),
    dict(type='PairedRandomCrop', gt_patch_size=96),
    dict(type='Flip', keys=['img', 'gt'], flip_ratio=0.5, direction='horizontal'),
    dict(type='Flip', keys=['img', 'gt'], flip_ratio=0.5, direction='vertical'),
    dict(type='RandomTransposeHW', keys=['img', 'gt'], transpose_ratio=0.5),
    dict(type='PackInputs'),
]
val_pipeline = [
    dict(type='LoadImageFromFile', key='img', channel_order='rgb'),
    dict(type='LoadImageFromFile', key='gt', channel_order='rgb'),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    num_workers=2,
    batch_size=8,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='BasicImageDataset',
        metainfo=dict(dataset_type='offline_image_sr', task_name='sisr'),
        data_root=f'{data_root}/train',
        data_prefix=dict(img='LR_bicubic/X4', gt='HR'),
        filename_tmpl=dict(img='{}x4', gt='{}'),
        search_key='gt',
        pipeline=train_pipeline))

val_dataloader = dict(
    num_workers=1,
    batch_size=1,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='BasicImageDataset',
        metainfo=dict(dataset_type='offline_image_sr', task_name='sisr'),
        data_root=f'{data_root}/val',
        data_prefix=dict(img='LR_bicubic/X4', gt='HR'),
        filename_tmpl=dict(img='{}x4', gt='{}'),
        search_key='gt',
        pipeline=val_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(type='Evaluator', metrics=[dict(type='PSNR', crop_border=scale),
                                                dict(type='SSIM', crop_border=scale)])
test_evaluator = val_evaluator
val_cfg = dict(type='MultiValLoop')
test_cfg = dict(type='MultiTestLoop')

env_cfg = dict(dist_cfg=dict(backend='gloo'))  # CPU machines; use nccl on GPUs
custom_hooks = []  # the image-saving visualisation hook of MMagic's runtime is not needed here

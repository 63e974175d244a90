# MemSR Plain-M x4 from Teacher-M (EDSRNet, 64 channels x 16 blocks) on DIV2K with the paper's settings (Sec. 4.1):
# HR patches 192, batch 16, Adam (0.9, 0.999), one-cycle LR with max 2e-4, 1e6 iterations, lambda 0.3,
# epsilon 1e-5 (Eq. 14), seeds 233-236. Paths are yours (DIV2K in BasicSR's / MMagic's layout).
#   mim train mmagic options/mmagic/memsr/memsr_plain-m_x4_div2k.py
# model.generator must be the `student` entry of the initialisation file (python -m memsr_plugin.init).
_base_ = ['./memsr_distill_x4_tiny_offline.py']

experiment_name = 'memsr_plain-m_x4_div2k'
work_dir = f'./work_dirs/{experiment_name}'
init_file = 'experiments/pretrained_models/memsr/init_Plain-M_x4_mmagic.pth'
randomness = dict(seed=233)

model = dict(
    generator=dict(widths=[64] * 34 + [256, 256, 3], shuffles=[1] * 34 + [2, 2, 1], acts=['relu'] * 36 + ['identity']),
    teacher=dict(mid_channels=64, num_blocks=16),
    teacher_checkpoint='experiments/pretrained_models/memsr/EDSRNet_Teacher-M_x4.pth',
    distill=dict(init_file=init_file))

data_root = 'datasets/DIV2K'
train_pipeline = [
    dict(type='LoadImageFromFile', key='img', channel_order='rgb'),
    dict(type='LoadImageFromFile', key='gt', channel_order='rgb'),
    dict(type='SetValues', dictionary=dict(scale=4)),
    dict(type='PairedRandomCrop', gt_patch_size=192),
    dict(type='Flip', keys=['img', 'gt'], flip_ratio=0.5, direction='horizontal'),
    dict(type='Flip', keys=['img', 'gt'], flip_ratio=0.5, direction='vertical'),
    dict(type='RandomTransposeHW', keys=['img', 'gt'], transpose_ratio=0.5),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    num_workers=6, batch_size=16,
    dataset=dict(data_root=data_root, data_prefix=dict(img='DIV2K_train_LR_bicubic/X4', gt='DIV2K_train_HR'),
                 pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(data_root=data_root, data_prefix=dict(img='DIV2K_valid_LR_bicubic/X4', gt='DIV2K_valid_HR')))
test_dataloader = val_dataloader

max_iters = 1000000
train_cfg = dict(max_iters=max_iters, val_interval=5000)
param_scheduler = dict(total_steps=max_iters)
default_hooks = dict(logger=dict(interval=100), checkpoint=dict(interval=5000))

# MemSR initialisation-aware distillation (Sec. 3.4) in MMagic's runner, on the bundled offline photos: a plain
# student initialised from a tiny EDSRNet teacher (Alg. 1) learns from the teacher's plain form through trainable
# adapters (Eq. 14). Make the teacher and the initialisation file first (python -m memsr_plugin.init --widths 16,
# or with --theta and --distill-options <this file>, which writes this config with its student filled in), then:
#   mim train mmagic options/mmagic/memsr/memsr_distill_x4_tiny_offline.py
# model.generator must be the `student` entry of the initialisation file; model.teacher the teacher it was made
# from. Test / inference need the student alone: MMagic's BaseEditModel, the same generator, load_from.
_base_ = ['../_base_/offline_image_sr_x4.py']

experiment_name = 'memsr_distill_x4_tiny_offline'
work_dir = f'./work_dirs/{experiment_name}'
init_file = 'experiments/pretrained_models/memsr/demo_init_x4_mmagic.pth'

model = dict(
    type='MemSRDistillEditor',
    generator=dict(type='PlainConvSR', in_channels=3, widths=[16] * 6 + [64, 64, 3], shuffles=[1] * 6 + [2, 2, 1],
                   acts=['relu'] * 6 + ['identity'] * 3, input_ones=True),  # what `init --widths 16` makes
    teacher=dict(type='EDSRNet', in_channels=3, out_channels=3, mid_channels=16, num_blocks=2, upscale_factor=4),
    teacher_checkpoint='experiments/pretrained_models/memsr/demo_EDSRNet_teacher_x4.pth',
    distill=dict(loss_weight=0.3, epsilon=1e-5, init_file=init_file),
    pixel_loss=dict(type='L1Loss', loss_weight=1.0, reduction='mean'),
    train_cfg=dict(),
    test_cfg=dict(),
    data_preprocessor=dict(type='DataPreprocessor', mean=[0., 0., 0.], std=[255., 255., 255.]))

max_iters = 200
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=100)

optim_wrapper = dict(
    constructor='DefaultOptimWrapperConstructor',
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=2e-4, betas=(0.9, 0.999)))

# PyTorch's OneCycleLR (the paper's), registered by the plugin; mmengine's own OneCycleLR pickles its annealing
# function into every checkpoint, which the safe checkpoint reading refuses on resume.
param_scheduler = dict(type='PyTorchOneCycleLR', max_lr=2e-4, total_steps=max_iters, by_epoch=False)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', interval=100, by_epoch=False, max_keep_ckpts=2, save_best=None,
                    out_dir=None))

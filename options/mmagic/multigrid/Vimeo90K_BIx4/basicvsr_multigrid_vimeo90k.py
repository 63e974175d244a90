# BasicVSR on Vimeo-90K (BI x4) with multigrid training and a large minibatch (Lin et al., Sec. 4.3): LR patches
# 32 -> 64, clips 6 -> 10 -> 14 frames (MMagic's pipeline mirrors each septuplet: 3 / 5 / 7 central frames read,
# then reversed), batch 64 (8 GPUs x 8), LR 2e-4 per 32 samples scaled to 4e-4, warmup 5000 iterations, 150k
# iterations (the baseline's 300k at twice the minibatch). Data paths as in MMagic's config (data/vimeo90k).
#   mim train mmagic options/mmagic/multigrid/Vimeo90K_BIx4/basicvsr_multigrid_vimeo90k.py --gpus 8 --launcher pytorch
_base_ = ['mmagic::basicvsr/basicvsr_2xb4_vimeo90k-bi.py', '../_base_/multigrid.py']

experiment_name = 'basicvsr_multigrid_vimeo90k'
work_dir = f'./work_dirs/{experiment_name}'
max_iters = 150_000

multigrid = dict(_base_.multigrid, spatial_sizes=[32, 64], temporal_sizes=[6, 10, 14])
custom_hooks = [dict(type='MultigridHook', **multigrid)]
param_scheduler = dict(_delete_=True, type='MultigridLR', by_epoch=False)  # the hook's settings

custom_imports = dict(imports=['effsr_core.mmagic'], allow_failed_imports=False)
train_dataloader = dict(batch_size=8)  # per GPU
train_cfg = dict(max_iters=max_iters)
optim_wrapper = dict(optimizer=dict(lr=2e-4))
auto_scale_lr = dict(enable=True, base_batch_size=32)  # linear scaling rule: 2e-4 x (GPUs x batch_size) / 32
model = dict(generator=dict(spynet_pretrained=None))  # set a local SpyNet checkpoint (no download here)

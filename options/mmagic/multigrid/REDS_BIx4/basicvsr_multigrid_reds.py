# BasicVSR on REDS with multigrid training and a large minibatch (Lin et al., Table 1 (11)): LR patches 32 -> 64,
# clips 7 -> 11 -> 15 frames (six stages), batch 64 (8 GPUs x 8), LR 2e-4 per 32 samples (the baseline of Table 1
# (7): batch 32) scaled to 4e-4 by the linear scaling rule, warmup 5000 iterations. Data paths as in MMagic's
# BasicVSR config (data/REDS).
#   mim train mmagic options/mmagic/multigrid/REDS_BIx4/basicvsr_multigrid_reds.py --gpus 8 --launcher pytorch
_base_ = ['mmagic::basicvsr/basicvsr_2xb4_reds4.py', '../_base_/multigrid.py']

experiment_name = 'basicvsr_multigrid_reds'
work_dir = f'./work_dirs/{experiment_name}'
max_iters = 150_000  # the 32-sample baseline's 300k iterations at twice the minibatch

multigrid = dict(_base_.multigrid, spatial_sizes=[32, 64], temporal_sizes=[7, 11, 15])
custom_hooks = [dict(type='MultigridHook', **multigrid)]
param_scheduler = dict(_delete_=True, type='MultigridLR', by_epoch=False)  # the hook's settings

custom_imports = dict(imports=['effsr_core.mmagic'], allow_failed_imports=False)
train_dataloader = dict(batch_size=8)  # per GPU
train_cfg = dict(max_iters=max_iters)
optim_wrapper = dict(optimizer=dict(lr=2e-4))
auto_scale_lr = dict(enable=True, base_batch_size=32)  # linear scaling rule: 2e-4 x (GPUs x batch_size) / 32
model = dict(generator=dict(spynet_pretrained=None))  # set a local SpyNet checkpoint (no download here)

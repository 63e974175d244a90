# BasicVSR-M ("medium") on REDS with multigrid (Table 1 (5)): batch 64, LR 8e-4 (16 / 2e-4 scaled), 75k iterations
# (the 16-sample baseline's 300k, Table 4). The paper does not give BasicVSR-M's width and depth: 64 channels x
# 15 blocks (BasicSR's BasicVSR arch at its default depth, as the BasicSR configs read it) is an assumption; set
# them to your medium model's.
_base_ = ['./basicvsr_multigrid_reds.py']

experiment_name = 'basicvsr-m_multigrid_reds'
work_dir = f'./work_dirs/{experiment_name}'
max_iters = 75_000
train_cfg = dict(max_iters=max_iters)
auto_scale_lr = dict(enable=True, base_batch_size=16)  # BasicVSR-M's baseline: batch 16 (Table 1 (1)) -> 8e-4
model = dict(generator=dict(mid_channels=64, num_blocks=15))

"""A denoising conv autoencoder (Vincent et al. 2008, in conv form): mnist8k digits plus Gaussian
noise of std 0.5 in, the clean digit out (regression, MSE).

Model `denoise_ae`: stride-2 3x3 conv encoder 28 -> 14 -> 7 (32, 64 maps), decoder of x2
transposed convs (kernel 4; `:up_kernel=3` a kernel not divisible by the stride; `:decoder=resize`
nearest resize then 3x3 conv). Data: `cnnlab.train.config.mnist8k_unit` (pixels in [0, 1]; digits
0-5,999 train, 6,000-7,999 eval, with fixed noise). Adam 1e-3, cosine, batch 64, 3 epochs;
transposed convs as convs of the zero-inserted input (`model.transpose_impl='zero_insert'`).
Command:
  python scripts/run.py --config=configs/dense/denoise_mnist8k.py --workdir=runs/dense/denoise
Its checkerboard comparison (the three decoders): configs/dense/checkerboard.py.
Smoke (2 steps, 64 eval digits): :smoke
Result (2026-12-05, 4.6 min on the loaded 2-core CPU): eval MSE 0.0168 against 0.25 for the noisy
input (kernel 3: 0.0180, resize: 0.0171): docs/video_dense.md ("Denoising and checkerboard
artefacts").
"""

from cnnlab.train import config as config_lib


def get_config(arg=None):
  args = config_lib.parse_arg(arg, ("smoke",), {"decoder": ("transpose", "resize"),
                                                "up_kernel": ("3", "4")})
  c = config_lib.mnist8k_unit(config_lib.base())
  c.task = "denoise"
  c.noise_std = 0.5
  c.model.update(name="denoise_ae", decoder=args.get("decoder", "transpose"),
                 up_kernel_size=int(args.get("up_kernel", "4")), transpose_impl="zero_insert")
  c.optimizer.update(name="adam", learning_rate=1e-3, schedule="cosine", warmup_epochs=0.5)
  c.batch_size = 64
  c.eval_batch_size = 250
  c.num_epochs = 3
  c.log_every_steps = 93
  if args.get("smoke"):
    config_lib.smoke(c)
    c.data.eval_split = "train[6000:6064]"
  return c

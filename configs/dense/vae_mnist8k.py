"""A convolutional VAE (Kingma & Welling 2014) on mnist8k: its decoder is the generator of
transposed convs (x2 twice, kernel 4) that turns a 16-d standard-normal code into a digit.

Model `conv_vae` (stride-2 conv encoder 32/64 maps -> mean, log-variance; dense + two x2
transposed convs decoder; Bernoulli pixels). Task `vae`: the negative ELBO (reconstruction
cross-entropy + KL, nats per digit). Data: `cnnlab.train.config.mnist8k_unit` (pixels in [0, 1];
digits 0-5,999 train, 6,000-7,999 eval). Adam 1e-3, cosine, batch 64, 10 epochs (93 steps each);
transposed convs as convs of the zero-inserted input (`model.transpose_impl='zero_insert'`, the
faster here).
Command (train, then the sample grid and reconstructions of eval digits as a PNG):
  python scripts/run.py --config=configs/dense/vae_mnist8k.py --workdir=runs/dense/vae
  python scripts/run.py --config=configs/dense/vae_mnist8k.py:samples \
      --workdir=runs/dense/vae/samples
`:decoder=resize`: nearest resize + conv in place of the transposed convs.
Smoke (2 steps, 64 eval digits): :smoke
Result (2026-12-05, 16.5 min on the loaded 2-core CPU): eval negative ELBO 112.4 nats per digit
(reconstruction 88.2 + KL 24.2); samples: docs/video_dense.md ("A generator of transposed convs").
"""

from cnnlab.train import config as config_lib

RUN_WORKDIR = "runs/dense/vae"


def get_config(arg=None):
  args = config_lib.parse_arg(arg, ("smoke", "samples"), {"decoder": ("transpose", "resize")})
  if args.get("samples"):
    return config_lib.analysis("vae_samples", run_workdir=RUN_WORKDIR, num_samples=64, seed=0)
  c = config_lib.mnist8k_unit(config_lib.base())
  c.task = "vae"
  # zero_insert: ops.conv_transpose as a conv of the zero-inserted input, about 1.7x faster to
  # train here than lax's transposed conv (1.3 vs 2.2 s per step of 64, loaded CPU, 2026-12-05).
  c.model.update(name="conv_vae", decoder=args.get("decoder", "transpose"),
                 transpose_impl="zero_insert")
  c.optimizer.update(name="adam", learning_rate=1e-3, schedule="cosine", warmup_epochs=0.5)
  c.batch_size = 64
  c.eval_batch_size = 250
  c.num_epochs = 10
  c.log_every_steps = 93
  if args.get("smoke"):
    config_lib.smoke(c)
    c.data.eval_split = "train[6000:6064]"
  return c

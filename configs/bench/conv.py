"""Shapes for ``scripts/bench_conv.py`` (one conv each; float32, channels-last).

  python scripts/bench_conv.py --config=configs/bench/conv.py --workdir=runs/bench_conv
  Smoke (two tiny shapes, impls lax/fft/im2col, 2 rounds of 2 timed calls):
    --config=configs/bench/conv.py:smoke
  The 1D convs of the sequence models instead (Kim's CNN, the TCN, WaveNet, M5; real batch
  sizes and lengths): --config=configs/bench/conv.py:sequence
  Only the depthwise shapes, `depthwise` impl against torch (5 rounds of 5 timed calls, about
  a minute): --config=configs/bench/conv.py:depthwise
  Only the ResNet 3x3 stages (N=4 and N=64), lax, fenced, direct and winograd against torch (5
  rounds of 5 timed calls, about 5 minutes): --config=configs/bench/conv.py:resnet
  The convs behind ``impl='auto'``'s rules for few input channels and one output position
  (lax, rows, cols, im2col against torch; 5 rounds of 5 calls):
    --config=configs/bench/conv.py:few_channels

Each shape: ``name``, ``cls`` (the class the summary groups by), ``x`` ``(N, *spatial, C_in)``,
``window``, ``c_out``, ``stride``, ``padding`` (symmetric int, so torch gets the same conv),
``dilation``, ``groups``, ``skip`` (impls not timed although they support the shape:
``matmul_sparse`` on the 1D / depthwise shapes, where a first run measured it ~1000x slower than
lax with tens of seconds of compile; ``rows`` and ``cols`` on the depthwise shapes, ~6000x slower
than ``depthwise`` at 14x14x256).
Reduced from the issue's sizes to finish in a few minutes on 2 CPU cores: the ResNet stages
(ResNet-18/34 3x3 convs, 56x56x64 ... 7x7x512, and the first stride-2 3x3) at N=4 (class
``resnet``; the four stages again at N=64, class ``resnet_n64``, without fft, matmul, matmul_sparse
and winograd_f4),
the ResNet stem at N=4 with 112x112 input instead of 224x224, depthwise and 1D at N=8; LeNet at
its real N=64.
"""

import ml_collections


def _shape(name, cls, x, window, c_out, stride=1, padding=0, dilation=1, groups=1, skip=()):
  return dict(name=name, cls=cls, x=tuple(x), window=tuple(window), c_out=c_out, stride=stride,
              padding=padding, dilation=dilation, groups=groups, skip=tuple(skip))


_N64_SKIP = ("fft", "matmul", "matmul_sparse", "winograd_f4")
# rows' grouped conv is lax's with C_in x K_0 channels per group: 10 s a fwd+bwd at 14x14x256;
# cols runs rows; fenced is lax's grouped conv behind a fusion fence.
_DEPTHWISE_SKIP = ("matmul_sparse", "rows", "cols", "fenced")


def shapes():
  out = [
      _shape("lenet_c1", "C_in<=3", (64, 28, 28, 1), (5, 5), 6),
      _shape("resnet_stem", "C_in<=3", (4, 112, 112, 3), (7, 7), 64, stride=2, padding=3),
      _shape("lenet_c2", "lenet", (64, 14, 14, 6), (5, 5), 16),
  ]
  for i, (hw, c) in enumerate([(56, 64), (28, 128), (14, 256), (7, 512)]):
    out.append(_shape(f"resnet_s{i + 1}_{hw}x{c}", "resnet", (4, hw, hw, c), (3, 3), c,
                      padding=1))
  out.append(_shape("resnet_down_56x64", "resnet", (4, 56, 56, 64), (3, 3), 128, stride=2,
                    padding=1))
  # The same stages at ResNet-18's training batch (N=64), without the impls slowest at N=4
  # (docs/conv_benchmark.md), to keep the run within minutes.
  for i, (hw, c) in enumerate([(56, 64), (28, 128), (14, 256), (7, 512)]):
    out.append(_shape(f"resnet_s{i + 1}_{hw}x{c}_n64", "resnet_n64", (64, hw, hw, c), (3, 3), c,
                      padding=1, skip=_N64_SKIP))
  for k in (3, 7, 11, 15, 23, 31, 47, 63):
    out.append(_shape(f"conv1d_k{k}", "conv1d_large_k", (8, 512, 32), (k,), 32, padding=k // 2,
                      skip=["matmul_sparse"]))
  out.append(_shape("depthwise_56x64", "depthwise", (8, 56, 56, 64), (3, 3), 64, padding=1,
                    groups=64, skip=_DEPTHWISE_SKIP))
  out.append(_shape("depthwise_14x256", "depthwise", (8, 14, 14, 256), (3, 3), 256, padding=1,
                    groups=256, skip=_DEPTHWISE_SKIP))
  # MobileNet-v2's 56x56x144 expansion (3x3, stride 1 and its stride-2 block) and
  # EfficientNet-B0's 5x5 stride-2 depthwise at 56x56x144.
  out.append(_shape("depthwise_56x144", "depthwise", (8, 56, 56, 144), (3, 3), 144, padding=1,
                    groups=144, skip=_DEPTHWISE_SKIP))
  out.append(_shape("depthwise_56x144_s2", "depthwise", (8, 56, 56, 144), (3, 3), 144, stride=2,
                    padding=1, groups=144, skip=_DEPTHWISE_SKIP))
  out.append(_shape("depthwise_56x144_k5s2", "depthwise", (8, 56, 56, 144), (5, 5), 144,
                    stride=2, padding=2, groups=144, skip=_DEPTHWISE_SKIP))
  out.append(_shape("conv3d_16x16", "conv3d", (2, 16, 16, 16, 16), (3, 3, 3), 32, padding=1))
  return out


def sequence_shapes():
  """One conv of each sequence model of configs/sequence, at its config's batch and length."""
  out = [_shape(f"kim_k{k}", "conv1d_wide_c", (50, 56, 300), (k,), 100, skip=["matmul_sparse"])
         for k in (3, 4, 5)]
  out += [_shape(f"tcn_d{d}", "conv1d_dilated", (64, 784, 25), (7,), 25, padding=3 * d,
                 dilation=d, skip=["matmul_sparse"]) for d in (1, 16)]
  out += [_shape(f"wavenet_d{d}", "conv1d_dilated", (32, 8000, 16), (2,), 32, padding=d // 2,
                 dilation=d, skip=["matmul_sparse"]) for d in (2, 64)]
  out += [_shape("m5_stem", "conv1d_wide_c", (32, 8000, 1), (80,), 128, stride=4, padding=38,
                 skip=["matmul_sparse"]),
          _shape("m5_block", "conv1d_wide_c", (32, 500, 128), (3,), 128, padding=1,
                 skip=["matmul_sparse"])]
  return out


def few_channel_shapes():
  """The convs behind ``auto``'s ``rows`` and one-position rules (ops/conv_auto.py): LeNet-5's
  three at its training batch, 3x3 convs fed by 3 / 8 / 16 channels, a 3D stem on grey clips."""
  return [
      _shape("lenet_c1_n128", "few_channels", (128, 32, 32, 1), (5, 5), 6),
      _shape("lenet_c3_n128", "few_channels", (128, 14, 14, 6), (5, 5), 16),
      _shape("lenet_c5_n128", "one_position", (128, 5, 5, 16), (5, 5), 120),
      _shape("cin3_3x3", "few_channels", (32, 32, 32, 3), (3, 3), 16, padding=1),
      _shape("cin8_3x3", "few_channels", (32, 32, 32, 8), (3, 3), 16, padding=1),
      _shape("cin16_3x3", "few_channels", (32, 32, 32, 16), (3, 3), 16, padding=1),
      _shape("mobilenet_stem", "few_channels", (32, 64, 64, 3), (3, 3), 32, stride=2, padding=1),
      _shape("resnet_stem_n8", "few_channels", (8, 112, 112, 3), (7, 7), 64, stride=2,
             padding=3),
      _shape("c3d_stem", "few_channels", (2, 16, 64, 64, 1), (3, 3, 3), 16, padding=1),
  ]


def get_config(arg=None):
  c = ml_collections.ConfigDict()
  c.shapes = shapes()
  c.impls = ()  # empty: every registered impl that supports the shape (``auto`` excluded)
  c.warmup = 1
  c.warmup_s = 0.03  # and calls for at least this long: torch's threads wake after the settle
  c.iters = 3  # calls per timing; its median is one round's time
  c.rounds = 3  # torch and each impl timed once per round, in a rotated order (cnnlab.bench.conv)
  c.matmul_size = 2048  # square jnp.matmul timed for the peak GFLOP/s
  c.seed = 0
  c.note = ""  # printed under the header of the summary (e.g. how quiet the machine was)
  if arg == "smoke":
    c.shapes = [_shape("tiny_2d", "C_in<=3", (2, 8, 8, 3), (3, 3), 4, padding=1),
                _shape("tiny_1d_k11", "conv1d_large_k", (2, 32, 4), (11,), 4, padding=5)]
    c.impls = ("lax", "fft", "im2col")
    c.iters, c.rounds = 2, 2
    c.matmul_size = 128
  elif arg == "sequence":
    c.shapes = sequence_shapes()
    c.impls = ("lax", "fft", "im2col", "shift")
  elif arg == "depthwise":
    c.shapes = [s for s in c.shapes if s["cls"] == "depthwise"]
    c.impls = ("depthwise",)
    c.iters, c.rounds = 5, 5
  elif arg == "resnet":
    c.shapes = [s for s in c.shapes if s["cls"] in ("resnet", "resnet_n64")
                and s["name"].startswith("resnet_s")]
    c.impls = ("lax", "fenced", "direct", "winograd")
    c.iters, c.rounds = 5, 5
  elif arg == "few_channels":
    c.shapes = few_channel_shapes()
    c.impls = ("lax", "rows", "cols", "im2col")
    c.iters, c.rounds = 5, 5
  elif arg:
    raise ValueError(f"config arg {arg!r} is not one of ('smoke', 'sequence', 'depthwise', "
                     "'resnet', 'few_channels')")
  return c

"""AlexNet (Krizhevsky et al. 2012), torchvision's one-tower layout ("One weird trick", 2014),
on ``(N, H, W, 3)`` inputs with H, W >= 63.

| layer | torchvision | here |
| stem   | Conv 11x11/4 pad 2 -> 64, ReLU, MaxPool 3/2 | same |
| stage1 | Conv 5x5 pad 2 -> 192, ReLU, MaxPool 3/2 | same |
| stage2 | Conv 3x3 pad 1 -> 384, 256, 256 (ReLU each), MaxPool 3/2 | same |
| head   | AdaptiveAvgPool (6, 6), Dropout, FC 4096, ReLU, Dropout, FC 4096, ReLU, FC classes |
(``hidden_features`` sets the 4096.)

Flattening is NHWC (H, W, C order); torch's is (C, H, W), so porting torchvision weights permutes
the first Linear's rows.

Initialisation: torchvision keeps torch's layer defaults, ``kaiming_uniform_(a=sqrt(5))`` =
``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` for every kernel (used here); torch's biases are drawn
from the same range, here they start at 0.

Intermediates: ``stem``, ``stage1``, ``stage2`` and ``pre_logits`` (the hidden features entering
the last Linear).
"""

from __future__ import annotations

import functools

import flax.linen as nn

from cnnlab import nn as cnn
from cnnlab import ops
from cnnlab.models.blocks import Model, check_image, torch_default_kernel_init
from cnnlab.models.registry import register

MIN_INPUT = 63  # smallest input leaving one position after the third max pool


class AlexNet(Model):
  num_classes: int = 1000
  hidden_features: int = 4096
  dropout_rate: float = 0.5
  pool_size: int = 6

  @nn.compact
  def __call__(self, x_BxHxWxC, train: bool = False):
    check_image("AlexNet", x_BxHxWxC, MIN_INPUT)
    conv = functools.partial(cnn.Conv, impl=self.conv_impl, dtype=self.dtype,
                             kernel_init=torch_default_kernel_init)
    dense = functools.partial(nn.Dense, dtype=self.dtype, kernel_init=torch_default_kernel_init)
    pad = lambda p: ((p, p), (p, p))

    x = nn.relu(conv(64, (11, 11), strides=4, padding=pad(2), name="conv1")(x_BxHxWxC))
    x = ops.max_pool(x, 3, 2)
    self.sow("intermediates", "stem", x)
    x = nn.relu(conv(192, (5, 5), padding=pad(2), name="conv2")(x))
    x = ops.max_pool(x, 3, 2)
    self.sow("intermediates", "stage1", x)
    for i, f in enumerate((384, 256, 256), start=3):
      x = nn.relu(conv(f, (3, 3), padding=pad(1), name=f"conv{i}")(x))
    x = ops.max_pool(x, 3, 2)
    self.sow("intermediates", "stage2", x)

    x = ops.adaptive_avg_pool(x, self.pool_size)
    x = x.reshape(x.shape[0], -1)
    for i in range(2):
      x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
      x = nn.relu(dense(self.hidden_features, name=f"fc{i + 1}")(x))
    self.sow("intermediates", "pre_logits", x)
    return dense(self.num_classes, name="head")(x)


register("alexnet", functools.partial(AlexNet), input_shape=(224, 224, 3),
         paper="Krizhevsky 2014, One weird trick for parallelizing convolutional neural networks",
         num_params=61_100_840, family="alexnet", small_input_shape=(63, 63, 3))

"""The MNIST-1D paper's 1D CNN (Greydanus 2020, ``ConvBase`` in the repo's ``notebooks/models.py``).

Input ``(N, L, C)`` channels-last (MNIST-1D: ``(N, 40, 1)``). Three convs with ``channels``
features, kernels ``(5, 3, 3)``, stride 2, symmetric padding 1 (as torch's ``padding=1``), each
followed by ReLU: length 40 -> 19 -> 10 -> 5; then flatten and a linear layer to
``num_classes``. Flattening is position-major (``(N, 5, 25)`` -> 125), torch's ``view`` of
``(N, 25, 5)`` is channel-major: same parameter count (5,210 for 1 channel, 10 classes), the
linear kernel rows are a permutation of torch's.
"""

from __future__ import annotations

from collections.abc import Sequence
import functools

import flax.linen as nn

from cnnlab import nn as cnn
from cnnlab.models.blocks import Model
from cnnlab.models.registry import register


class CNN1D(Model):
  num_classes: int = 10
  channels: int = 25
  kernel_sizes: Sequence[int] = (5, 3, 3)

  @nn.compact
  def __call__(self, x_BxLxC, train: bool = False):
    del train  # no dropout or batch statistics
    if x_BxLxC.ndim != 3:
      raise ValueError(f"CNN1D: x must be (N, L, C); got shape {x_BxLxC.shape}")
    conv = functools.partial(cnn.Conv, self.channels, strides=2, padding=((1, 1),),
                             impl=self.conv_impl, dtype=self.dtype)
    x = x_BxLxC
    for i, k in enumerate(self.kernel_sizes):
      x = nn.relu(conv(kernel_size=(k,), name=f"conv{i}")(x))
      self.sow("intermediates", f"stage{i + 1}", x)
    x = x.reshape(x.shape[0], -1)
    self.sow("intermediates", "pre_logits", x)
    return nn.Dense(self.num_classes, dtype=self.dtype, name="head")(x)


register("cnn1d", functools.partial(CNN1D), input_shape=(40, 1), family="cnn1d",
         paper="Greydanus 2020, Scaling down deep learning (MNIST-1D)", num_params=5210)

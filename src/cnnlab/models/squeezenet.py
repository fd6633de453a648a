"""SqueezeNet 1.0 (Iandola et al. 2016) and 1.1 (the official repo's revision), torchvision
layout, on ``(N, H, W, 3)`` inputs with H, W >= 21 (1.0) or 17 (1.1), as torch (its ceil-mode
pools keep a window that hangs past a 2x2 map, giving 1x1).

Fire module: 1x1 squeeze conv ``s`` + ReLU, then concat(1x1 expand ``e`` + ReLU, 3x3 pad 1 expand
``e`` + ReLU) -> ``2e`` channels. Every max pool is 3x3 / 2 with ``ceil_mode=True`` (torchvision).
Fires as (squeeze, expand):
| | stem (``conv1``) | stage1 | stage2 | stage3 |
| 1.0 | 7x7/2 -> 96, pool | (16,64)x2 (32,128) pool | (32,128) (48,192)x2 (64,256) pool | (64,256) |
| 1.1 | 3x3/2 -> 64, pool | (16,64)x2 pool | (32,128)x2 pool | (48,192)x2 (64,256)x2 |
Head: Dropout, 1x1 conv -> ``num_classes``, ReLU, global average pool (torchvision's
``AdaptiveAvgPool2d((1, 1))``).

Initialisation (torchvision): final conv ``normal(0, 0.01)``, the others ``kaiming_uniform_``
(``U(+-sqrt(6 / fan_in))``); biases 0.

Intermediates: ``stem``, ``stage1`` ... ``stage3`` and ``pre_logits`` (the last stage's globally
averaged 512 features; the classifier itself works on the unpooled map).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

from cnnlab import nn as cnn
from cnnlab import ops
from cnnlab.models.blocks import Model, ModuleDef, check_image, kaiming_uniform_fan_in
from cnnlab.models.registry import register

final_conv_init = nn.initializers.normal(0.01)


class Fire(nn.Module):
  squeeze: int
  expand: int
  conv: ModuleDef

  @nn.compact
  def __call__(self, x):
    x = nn.relu(self.conv(self.squeeze, (1, 1), padding="VALID", name="squeeze")(x))
    e1 = nn.relu(self.conv(self.expand, (1, 1), padding="VALID", name="expand1x1")(x))
    e3 = nn.relu(self.conv(self.expand, (3, 3), padding=((1, 1), (1, 1)), name="expand3x3")(x))
    return jnp.concatenate([e1, e3], axis=-1)


class SqueezeNet(Model):
  stem_features: int
  stem_kernel: int
  stages: Sequence[Sequence[tuple[int, int]]]  # (squeeze, expand) per Fire, stage by stage
  min_input: int
  num_classes: int = 1000
  dropout_rate: float = 0.5

  @nn.compact
  def __call__(self, x_BxHxWxC, train: bool = False):
    check_image("SqueezeNet", x_BxHxWxC, self.min_input)
    conv = functools.partial(cnn.Conv, impl=self.conv_impl, dtype=self.dtype,
                             kernel_init=kaiming_uniform_fan_in)
    pool = functools.partial(ops.max_pool, window=3, stride=2, ceil_mode=True)

    k = self.stem_kernel
    x = nn.relu(conv(self.stem_features, (k, k), strides=2, padding="VALID", name="conv1")(
        x_BxHxWxC))
    x = pool(x)
    self.sow("intermediates", "stem", x)
    for i, fires in enumerate(self.stages):
      for j, (s, e) in enumerate(fires):
        x = Fire(s, e, conv, name=f"stage{i + 1}_fire{j + 1}")(x)
      if i < len(self.stages) - 1:
        x = pool(x)
      self.sow("intermediates", f"stage{i + 1}", x)
    self.sow("intermediates", "pre_logits", ops.global_avg_pool(x))

    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    x = conv(self.num_classes, (1, 1), padding="VALID", kernel_init=final_conv_init,
             name="head")(x)
    return ops.global_avg_pool(nn.relu(x))


_PAPER = ("Iandola et al. 2016, SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and "
          "<0.5MB model size")
squeezenet1_0 = functools.partial(
    SqueezeNet, stem_features=96, stem_kernel=7, min_input=21,
    stages=(((16, 64), (16, 64), (32, 128)), ((32, 128), (48, 192), (48, 192), (64, 256)),
            ((64, 256),)))
squeezenet1_1 = functools.partial(
    SqueezeNet, stem_features=64, stem_kernel=3, min_input=17,
    stages=(((16, 64), (16, 64)), ((32, 128), (32, 128)),
            ((48, 192), (48, 192), (64, 256), (64, 256))))
# torchvision's documented num_params, 1000 classes.
register("squeezenet1_0", squeezenet1_0, input_shape=(224, 224, 3), paper=_PAPER,
         num_params=1_248_424, family="squeezenet", small_input_shape=(32, 32, 3))
register("squeezenet1_1", squeezenet1_1, input_shape=(224, 224, 3),
         paper=_PAPER + "; v1.1 from the official SqueezeNet repo", num_params=1_235_496,
         family="squeezenet", small_input_shape=(32, 32, 3))

"""LeNet-5 (LeCun, Bottou, Bengio & Haffner 1998) on ``(N, 32, 32, C)`` inputs.

Layers: C1 5x5 conv -> 6 maps (28x28), S2 2x2 subsampling (14x14), C3 5x5 conv -> 16 maps (10x10),
S4 2x2 subsampling (5x5), C5 5x5 conv -> 120 (1x1), F6 dense 84, output dense ``num_classes``;
tanh after C1, C3, C5, F6 (and after the trainable subsampling, as in the paper).
Sown ``intermediates`` (after the tanh where there is one; Flax forbids reusing a layer's name):
``C1_out`` (N,28,28,6), ``S2_out`` (14x14x6), ``C3_out`` (10x10x16), ``S4_out`` (5x5x16),
``C5_out`` (1x1x120), ``pre_logits`` (F6 output, (N, 84)).

Two switches choose between the paper and the common modern variant:
- ``c3_table``: ``'full'`` (every C3 map sees all 6 S2 maps) or ``'lecun'`` (the paper's Table I:
  maps 0-5 see 3 contiguous S2 maps, 6-11 see 4 contiguous, 12-14 see 4 non-contiguous, 15 all 6),
  built as one small conv per C3 map over its own input maps.
- ``subsampling``: ``'avg'`` (2x2 average, no parameters) or ``'trainable'`` (the paper's sum of
  the 4 inputs times a trainable coefficient plus a trainable bias per map, then tanh).

Trainable parameters (1 input channel, 10 classes; the paper's RBF output is replaced by a linear
layer, 84*10+10 = 850):
| layer | full/avg (default) | lecun/trainable |
| C1 | 156 | 156 |   S2 | 0 | 12 |   C3 | 2,416 | 1,516 |   S4 | 0 | 32 |
| C5 | 48,120 | 48,120 |   F6 | 10,164 | 10,164 |   out | 850 | 850 |
| total | 61,706 | 60,850 |
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax.numpy as jnp

from cnnlab import nn as cnn
from cnnlab import ops
from cnnlab.models.blocks import Model
from cnnlab.models.registry import register

# Paper Table I: the S2 maps each C3 map is connected to.
LECUN_C3_TABLE = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (0, 4, 5), (0, 1, 5),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (0, 3, 4, 5), (0, 1, 4, 5), (0, 1, 2, 5),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)


class Subsample(nn.Module):
  """2x2 subsampling: plain average, or the paper's ``tanh(coef * sum + bias)`` per map."""
  kind: str = "avg"

  @nn.compact
  def __call__(self, x_BxHxWxC):
    if self.kind == "avg":
      return ops.avg_pool(x_BxHxWxC, 2)
    c = x_BxHxWxC.shape[-1]
    coef = self.param("coef", nn.initializers.ones_init(), (c,))
    bias = self.param("bias", nn.initializers.zeros_init(), (c,))
    return jnp.tanh(4.0 * ops.avg_pool(x_BxHxWxC, 2) * coef + bias)


class LeNet5(Model):
  num_classes: int = 10
  c3_table: str = "full"
  subsampling: str = "avg"

  @nn.compact
  def __call__(self, x_BxHxWxC, train: bool = False):
    del train  # no dropout or batch statistics
    if self.c3_table not in ("full", "lecun") or self.subsampling not in ("avg", "trainable"):
      raise ValueError("LeNet5: c3_table must be 'full' or 'lecun', subsampling 'avg' or "
                       f"'trainable'; got {self.c3_table!r}, {self.subsampling!r}")
    conv = functools.partial(cnn.Conv, kernel_size=(5, 5), padding="VALID", impl=self.conv_impl,
                             dtype=self.dtype)
    x = jnp.tanh(conv(6, name="C1")(x_BxHxWxC))
    self.sow("intermediates", "C1_out", x)
    x = Subsample(self.subsampling, name="S2")(x)
    self.sow("intermediates", "S2_out", x)
    if self.c3_table == "full":
      x = conv(16, name="C3")(x)
    else:
      x = jnp.concatenate([conv(1, name=f"C3_{i}")(x[..., list(src)])
                           for i, src in enumerate(LECUN_C3_TABLE)], axis=-1)
    x = jnp.tanh(x)
    self.sow("intermediates", "C3_out", x)
    x = Subsample(self.subsampling, name="S4")(x)
    self.sow("intermediates", "S4_out", x)
    x = jnp.tanh(conv(120, name="C5")(x))
    self.sow("intermediates", "C5_out", x)
    x = x.reshape(x.shape[0], -1)
    x = jnp.tanh(nn.Dense(84, dtype=self.dtype, name="F6")(x))
    self.sow("intermediates", "pre_logits", x)
    return nn.Dense(self.num_classes, dtype=self.dtype, name="output")(x)


_LECUN98 = "LeCun et al. 1998, Gradient-based learning applied to document recognition"
register("lenet5", functools.partial(LeNet5), input_shape=(32, 32, 1), paper=_LECUN98,
         num_params=61_706, family="lenet")
register("lenet5_original", functools.partial(LeNet5, c3_table="lecun", subsampling="trainable"),
         input_shape=(32, 32, 1), paper=_LECUN98, num_params=60_850, family="lenet")

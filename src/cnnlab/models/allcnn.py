"""All-CNN-C (Springenberg, Dosovitskiy, Brox & Riedmiller 2015, Table 2) on 32x32 inputs.

Only convolutions: max pooling is replaced by 3x3 convs of stride 2, the fully connected head by
1x1 convs and global averaging. ReLU after every conv, including the class maps (as in the paper).
| layer | output (32x32 input) | params |
| Dropout 0.2 on the input | | |
| 3x3 conv 96, pad 1 (x2) | 32x32x96 | 2,688 + 83,040 |
| 3x3 conv 96, stride 2, pad 1 (stem), Dropout 0.5 | 16x16x96 | 83,040 |
| 3x3 conv 192, pad 1 (x2) | 16x16x192 | 166,080 + 331,968 |
| 3x3 conv 192, stride 2, pad 1 (stage1), Dropout 0.5 | 8x8x192 | 331,968 |
| 3x3 conv 192, valid | 6x6x192 | 331,968 |
| 1x1 conv 192 (stage2) | 6x6x192 | 37,056 |
| 1x1 conv ``num_classes``, global average | 10 | 1,930 |
| total (10 classes) | | 1,369,738 (paper: 1.3M) |

Inputs need H, W >= 9. Initialisation (not stated in the paper): He normal
``N(0, 2 / fan_in)``, biases 0. Intermediates: ``stem``, ``stage1``, ``stage2``, ``pre_logits``
(the globally averaged 192 features of the last hidden layer).
"""

from __future__ import annotations

import functools

import flax.linen as nn

from cnnlab import nn as cnn
from cnnlab import ops
from cnnlab.models.blocks import Model, check_image, kaiming_normal_fan_in
from cnnlab.models.registry import register

MIN_INPUT = 9  # the valid 3x3 conv needs 3x3 left after two stride-2 convs


class AllCNN(Model):
  num_classes: int = 10
  width: int = 96
  input_dropout_rate: float = 0.2
  dropout_rate: float = 0.5

  @nn.compact
  def __call__(self, x_BxHxWxC, train: bool = False):
    check_image("AllCNN", x_BxHxWxC, MIN_INPUT)
    conv = functools.partial(cnn.Conv, padding=((1, 1), (1, 1)), impl=self.conv_impl,
                             dtype=self.dtype, kernel_init=kaiming_normal_fan_in)
    w1, w2 = self.width, 2 * self.width

    x = nn.Dropout(self.input_dropout_rate, deterministic=not train)(x_BxHxWxC)
    x = nn.relu(conv(w1, (3, 3), name="conv1")(x))
    x = nn.relu(conv(w1, (3, 3), name="conv2")(x))
    x = nn.relu(conv(w1, (3, 3), strides=2, name="conv3")(x))
    self.sow("intermediates", "stem", x)
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    x = nn.relu(conv(w2, (3, 3), name="conv4")(x))
    x = nn.relu(conv(w2, (3, 3), name="conv5")(x))
    x = nn.relu(conv(w2, (3, 3), strides=2, name="conv6")(x))
    self.sow("intermediates", "stage1", x)
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    x = nn.relu(conv(w2, (3, 3), padding="VALID", name="conv7")(x))
    x = nn.relu(conv(w2, (1, 1), padding="VALID", name="conv8")(x))
    self.sow("intermediates", "stage2", x)
    self.sow("intermediates", "pre_logits", ops.global_avg_pool(x))
    x = nn.relu(conv(self.num_classes, (1, 1), padding="VALID", name="head")(x))
    return ops.global_avg_pool(x)


register("allcnn_c", functools.partial(AllCNN), input_shape=(32, 32, 3),
         paper="Springenberg et al. 2015, Striving for Simplicity: The All Convolutional Net",
         num_params=1_369_738, family="allcnn", small_input_shape=(32, 32, 3))

"""LSTM / GRU sequence baselines (Bai et al. 2018's recurrent side) on ``flax.linen.RNN``.

Input ``(N, L, C)`` float -> ``num_layers`` stacked ``nn.RNN`` over ``nn.OptimizedLSTMCell`` or
``nn.GRUCell`` (``hidden_size`` units, zero initial carry; params ``lstm{i}`` / ``gru{i}``) ->
the TCN's heads (``'last'``: ``(N, num_classes)``, ``'per_timestep'``: ``(N, L, num_classes)``).
No convs: ``conv_impl`` is accepted (every registered model takes it) and unused.

Parameter counts (Flax's cells have one bias per gate, torch's two): LSTM ``4h(h + C + 1)``,
GRU ``3h(h + C + 1) + h`` per layer (``C`` = the layer's input features), head
``h * out + out``. ``matched_hidden_size`` picks the largest ``h`` within a parameter budget, e.g.
the ``tcn`` model's 66,910: LSTM h=127 (66,812), GRU h=146 (66,440) for 1 input, 10 classes.
"""

from __future__ import annotations

import functools

import flax.linen as nn

from cnnlab.models.blocks import Model
from cnnlab.models.registry import register
from cnnlab.models.tcn import check_head, sequence_head

CELLS = {"lstm": nn.OptimizedLSTMCell, "gru": nn.GRUCell}


def num_params(cell: str, hidden_size: int, input_features: int, num_outputs: int,
               num_layers: int = 1) -> int:
  """Closed-form parameter count (module doc)."""
  gates, extra = {"lstm": (4, 0), "gru": (3, 1)}[cell]
  total, c, h = 0, input_features, hidden_size
  for _ in range(num_layers):
    total += gates * h * (h + c + 1) + extra * h
    c = h
  return total + h * num_outputs + num_outputs


def matched_hidden_size(cell: str, budget: int, input_features: int, num_outputs: int,
                        num_layers: int = 1) -> int:
  """The largest hidden size whose model has at most ``budget`` parameters."""
  h = 1
  while num_params(cell, h + 1, input_features, num_outputs, num_layers) <= budget:
    h += 1
  return h


class RNNClassifier(Model):
  cell: str = "lstm"
  hidden_size: int = 128
  num_layers: int = 1
  num_classes: int = 10
  head: str = "last"

  @nn.compact
  def __call__(self, x_BxLxC, train: bool = False):
    del train  # no dropout or batch statistics
    check_head("RNNClassifier", self.head)
    if self.cell not in CELLS:
      raise ValueError(f"RNNClassifier: cell={self.cell!r} is not one of {tuple(CELLS)}")
    if x_BxLxC.ndim != 3:
      raise ValueError(f"RNNClassifier: x must be (N, L, C), got shape {x_BxLxC.shape}")
    x = x_BxLxC
    for i in range(self.num_layers):
      x = nn.RNN(CELLS[self.cell](self.hidden_size, dtype=self.dtype, name=f"{self.cell}{i}"))(x)
    return sequence_head(x, self.head, functools.partial(nn.Dense, dtype=self.dtype),
                         self.num_classes)


_BAI = "Bai, Kolter & Koltun 2018 (recurrent baselines); Hochreiter & Schmidhuber 1997 / Cho 2014"
# Hidden sizes matched to the ``tcn`` model's 66,910 parameters (seq. MNIST: 1 input, 10 classes).
for _cell, _h, _n in (("lstm", 127, 66_812), ("gru", 146, 66_440)):
  register(_cell, functools.partial(RNNClassifier, cell=_cell, hidden_size=_h),
           input_shape=(784, 1), paper=_BAI, num_params=_n, family="rnn",
           small_input_shape=(16, 1))

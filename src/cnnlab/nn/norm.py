"""Normalisation modules. Placeholder: re-exports Flax's until the ops-based ones land
(same constructor arguments, parameter names ``scale``/``bias`` and ``batch_stats``
``mean``/``var``)."""

import flax.linen as nn

BatchNorm = nn.BatchNorm
GroupNorm = nn.GroupNorm
LayerNorm = nn.LayerNorm

"""Thin Flax Linen modules over ``cnnlab.ops`` (parameter layout identical to ``flax.linen``)."""

from cnnlab.nn.conv import Conv
from cnnlab.nn.norm import BatchNorm, GroupNorm, LayerNorm

"""Thin Flax Linen modules over ``cnnlab.ops`` (parameter layout identical to ``flax.linen``)."""

from cnnlab.nn.conv import Conv
from cnnlab.nn.conv_transpose import ConvTranspose
from cnnlab.nn.norm import BatchNorm, GroupNorm, InstanceNorm, LayerNorm
from cnnlab.nn.pool import AdaptiveAvgPool, AvgPool, GlobalAvgPool, GlobalMaxPool, MaxPool

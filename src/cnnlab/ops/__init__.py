"""Pure functions on jnp arrays, channels-last (NWC / NHWC / NDHWC)."""

from cnnlab.ops import conv_auto  # noqa: F401  (registers conv(impl="auto"))
from cnnlab.ops.conv import conv, list_impls
from cnnlab.ops.conv_transpose import conv_transpose
from cnnlab.ops.norm import batch_norm, group_norm, instance_norm, layer_norm
from cnnlab.ops.pool import (adaptive_avg_pool, avg_pool, global_avg_pool, global_max_pool,
                             max_pool, max_pool_with_indices, max_unpool)

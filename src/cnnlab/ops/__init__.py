"""Pure functions on jnp arrays, channels-last (NWC / NHWC / NDHWC)."""

from cnnlab.ops.conv import conv, list_impls
from cnnlab.ops.pool import (adaptive_avg_pool, avg_pool, global_avg_pool, global_max_pool,
                             max_pool)

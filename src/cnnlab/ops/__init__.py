"""Pure functions on jnp arrays, channels-last (NWC / NHWC / NDHWC); conventions in
docs/conventions.md.

Modules are named for what they hold, never for a function exported here: ``ops.conv`` is the
function of ``convolution.py`` (parsing in ``conv_case.py``, impl registry in
``conv_registry.py``, one ``conv_<impl>.py`` per impl), ``ops.conv_transpose`` that of
``transposed_conv.py``.
"""

from cnnlab.ops.conv_registry import list_impls
from cnnlab.ops.convolution import conv
from cnnlab.ops.norm import batch_norm, group_norm, instance_norm, layer_norm
from cnnlab.ops.pool import (adaptive_avg_pool, avg_pool, global_avg_pool, global_max_pool,
                             max_pool, max_pool_with_indices, max_unpool)
from cnnlab.ops.transposed_conv import conv_transpose

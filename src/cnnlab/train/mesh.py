"""Data parallelism with ``jax.jit`` over a 1-axis ``Mesh`` of all devices (axis ``data``).

Params and optimizer state are replicated; batches are sharded on their leading axis. Each
process passes its local slice of the global batch (multi-host works the same way).
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P


def make_mesh() -> jax.sharding.Mesh:
  return jax.make_mesh((jax.device_count(),), ("data",), axis_types=(AxisType.Auto,))


def replicated(mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh) -> NamedSharding:
  return NamedSharding(mesh, P("data"))


def shard_batch(batch: dict, mesh) -> dict:
  """Process-local numpy batch -> global arrays sharded over ``data``."""
  sharding = batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
          for k, v in batch.items()}


def abstract_like(tree, sharding):
  """ShapeDtypeStructs of ``tree``'s leaves carrying ``sharding`` (for Orbax restores)."""
  return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), tree)


def barrier(name: str) -> None:
  """Waits until every process reached ``barrier(name)`` (nothing to wait for in one process)."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # noqa: PLC0415
    multihost_utils.sync_global_devices(name)

"""``lax`` conv: one ``lax.conv_general_dilated`` (channels-last input/output, ``(*window, I, O)``
kernel), with the upstream-crash workaround of docs/conventions.md ("Upstream crash: lax conv
gradient with stride, dilation and padding")."""

from __future__ import annotations

from jax import lax

from cnnlab.ops import padding as padlib
from cnnlab.ops.conv_registry import register_impl


def dimension_numbers(nd: int) -> lax.ConvDimensionNumbers:
  """Channels-last input/output and ``(*window, I, O)`` kernel for ``nd`` spatial dims."""
  sp = "DHW"[-nd:] if 1 <= nd <= 3 else None
  if sp is None:
    raise ValueError(f"conv supports 1, 2 or 3 spatial dims, got {nd}")
  return lax.conv_dimension_numbers((1,) * (nd + 2), (1,) * (nd + 2),
                                    (f"N{sp}C", f"{sp}IO", f"N{sp}C"))


@register_impl("lax")
def conv_lax(x, w, *, stride, pads, dilation, groups):
  nd = x.ndim - 2
  if any(s > 1 for s in stride) and any(d > 1 for d in dilation) and any(map(any, pads)):
    # jaxlib 0.10.2 CPU aborts in grad w.r.t. the input for stride>1 & dilation>1 & padding>0
    # (docs/conventions.md, "Upstream crash"): pad explicitly, then a VALID conv, same result.
    x, pads = padlib.pad_input(x, pads, "zeros"), ((0, 0),) * nd
  return lax.conv_general_dilated(
      x, w, window_strides=stride, padding=pads, rhs_dilation=dilation,
      dimension_numbers=dimension_numbers(nd), feature_group_count=groups)

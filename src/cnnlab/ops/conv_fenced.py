"""``fenced`` conv: ``lax``'s conv of ``conv_parts.fusion_fence(x)``; the same numbers as ``lax``.

The point is the backward pass on XLA's CPU backend. Its weight-gradient conv wants ``x`` with
the batch as the contracted (minor) dimension, so XLA lays ``x`` out again in a transposed copy,
and fuses the elementwise ops that produced ``x`` (BatchNorm, ReLU, residual adds) into that
copy, recomputing them while reading their inputs at transposed strides. Behind the fence the
copy reads the stored ``x`` (measurements: docs/performance.md, "A fence before the weight
gradient"). The fence is a ``cond`` per conv in a differentiated forward pass and nothing
elsewhere (eval, inference, export; off the CPU it is nothing at all, and this is ``lax``);
every mode of differentiation gives ``lax``'s numbers.
"""

from __future__ import annotations

from cnnlab.ops.conv_lax import conv_lax
from cnnlab.ops.conv_parts import fusion_fence
from cnnlab.ops.conv_registry import register_impl


@register_impl("fenced")
def conv_fenced(x, w, *, stride, pads, dilation, groups):
  return conv_lax(fusion_fence(x, w), w, stride=stride, pads=pads, dilation=dilation,
                  groups=groups)

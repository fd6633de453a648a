"""jaxlib 0.10.2 CPU aborts the process in ``grad`` w.r.t. the input of a 2D/3D
``lax.conv_general_dilated`` with stride > 1, rhs_dilation > 1 and non-zero padding (XLA CHECK in
algebraic_simplifier.cc; docs/conventions.md, "Upstream crash: lax conv gradient with stride,
dilation and padding"). ``ops.conv(impl='lax')`` must not crash: the
cases run in a subprocess (an abort there fails this test instead of killing pytest) and must
match the reference: ``jnp.pad`` then a 'VALID' conv.
"""

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import jax, jax.numpy as jnp, numpy as np
    from jax import lax
    from cnnlab import ops

    CASES = [  # x, kernel, strides, rhs_dilation, padding: each aborts raw lax's grad here
        ((2, 14, 6, 3), (5, 2, 3, 2), (2, 2), (2, 1), ((1, 0), (1, 1))),
        ((2, 14, 6, 6, 3), (5, 2, 2, 3, 2), (2, 2, 2), (2, 1, 1), ((1, 0), (1, 1), (1, 1))),
    ]
    rng = np.random.default_rng(0)
    for x_shape, w_shape, stride, dilation, pads in CASES:
      x, w = (jnp.asarray(rng.standard_normal(s), jnp.float32) for s in (x_shape, w_shape))
      sp = "DHW"[-len(stride):]
      dn = (f"N{sp}C", f"{sp}IO", f"N{sp}C")
      loss = lambda x, w: jnp.sum(jnp.sin(ops.conv(x, w, stride=stride, padding=pads,
                                                   dilation=dilation, impl="lax")))
      ref = lambda x, w: jnp.sum(jnp.sin(lax.conv_general_dilated(
          jnp.pad(x, ((0, 0), *pads, (0, 0))), w, stride, "VALID", rhs_dilation=dilation,
          dimension_numbers=dn)))
      want = jax.grad(ref, argnums=(0, 1))(x, w)
      for grad in (jax.grad(loss, argnums=(0, 1)), jax.jit(jax.grad(loss, argnums=(0, 1)))):
        for g, r in zip(grad(x, w), want):
          np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-5)
    print("GRADS MATCH")
""")


def test_lax_grad_with_stride_dilation_padding_does_not_crash():
  proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                        timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "GRADS MATCH" in proc.stdout

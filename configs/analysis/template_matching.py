"""Template matching by normalised cross-correlation with every ``cnnlab.ops.conv`` impl.

Shows: a noisy patch cut from a real photo is found at its exact position as the argmax of the
NCC map (numerator and box-filter denominator all computed with ``ops.conv``), and every impl
that can serve the convs gives the same map as ``lax``.

  python scripts/run.py --config=configs/analysis/template_matching.py \
      --workdir=runs/template_matching
  Smoke (24x36 image, 6x6 template): --config=configs/analysis/template_matching.py:smoke

The image is downscaled to 64x96 so that the dense ``matmul`` impl (conv matrix capped at 2^25
entries) can run too.
Result (china.jpg 64x96, 12x12 template, noise 0.1; regenerated 2026-12-01): found (18, 26) = true
position exactly; NCC 0.662 there vs 0.535 best >= 12 px away. lax, fft, im2col, shift, auto
(chose im2col) all find (18, 26); max |score - lax| 4.0e-4 (shift; fft 2.8e-4; flat sky, float32
cancellation; 4.1e-4 from fft on 2026-11-24, before the ops split),
<= 1.4e-5 where local std >= 0.02. Refused: matmul, matmul_sparse (matrix size caps), winograd,
winograd_f4 (3x3 only). Smoke (24x36, 6x6): all 7 that can serve a 6x6 kernel incl. matmul and
matmul_sparse find (12, 5), max diff 9.7e-5. Figure: docs/figures/template_matching.png.
"""

from cnnlab.train import config as config_lib


def get_config(arg=None):
  smoke = config_lib.parse_arg(arg, ("smoke",)).get("smoke")
  c = config_lib.analysis("template_matching")
  c.image = "china.jpg"   # sklearn sample image: china.jpg or flower.jpg
  c.height = 64           # rows after the antialiased resize (aspect kept: 64 x 96)
  c.top, c.left = 18, 26  # the template's top-left corner in the resized image
  c.size = 12             # square template side
  c.noise_std = 0.1       # Gaussian noise added to the template (image values in [0, 1])
  c.seed = 0
  c.min_std = 1e-3        # floor on the local standard deviation (flat regions)
  c.impls = ()            # empty: every registered impl ('auto' included)
  if smoke:
    c.height, c.top, c.left, c.size, c.noise_std = 24, 12, 5, 6, 0.05
  return c

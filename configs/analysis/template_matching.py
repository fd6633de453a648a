"""Template matching by normalised cross-correlation with every ``cnnlab.ops.conv`` impl.

Shows: a noisy patch cut from a real photo is found at its exact position as the argmax of the
NCC map (numerator and box-filter denominator all computed with ``ops.conv``), and every impl
that can serve the convs gives the same map as ``lax``.

  python scripts/run.py --config=configs/analysis/template_matching.py \
      --workdir=runs/template_matching
  Smoke (24x36 image, 6x6 template): --config=configs/analysis/template_matching.py:smoke

The image is downscaled to 64x96 so that the dense ``matmul`` impl (conv matrix capped at 2^25
entries) can run too.
Result: docs/experiments/template_matching.md (regenerated 2026-12-01).
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

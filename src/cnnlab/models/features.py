"""Named intermediate outputs for transfer learning and visualisation.

Models ``self.sow('intermediates', NAME, x)`` at stage boundaries; the conventional names are
``stem``, ``stage1`` ... ``stageK`` and ``pre_logits`` (the pooled features before the head).
"""

from __future__ import annotations

def extract_features(model, variables, x, *, train: bool = False, names=None, rngs=None):
  """Runs ``model`` on ``x`` and returns ``(logits, {name: array})`` of its sown features."""
  mutable = ["intermediates"] + (["batch_stats"] if train and "batch_stats" in variables else [])
  logits, state = model.apply(variables, x, train=train, mutable=mutable, rngs=rngs)
  feats = {k: v[-1] for k, v in _flatten(state.get("intermediates", {})).items()}
  if names is not None:
    missing = sorted(set(names) - set(feats))
    if missing:
      raise ValueError(f"features {missing} are not produced; available: {sorted(feats)}")
    feats = {k: feats[k] for k in names}
  return logits, feats


def _flatten(tree, prefix=""):
  """``{'stage1': (x,), 'block': {'a': (y,)}}`` -> ``{'stage1': (x,), 'block/a': (y,)}``."""
  out = {}
  for k, v in tree.items():
    key = f"{prefix}{k}"
    if isinstance(v, tuple):
      out[key] = v
    else:
      out.update(_flatten(v, key + "/"))
  return out

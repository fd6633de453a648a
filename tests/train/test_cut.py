"""cnnlab.train.cut: a model cut after a named feature has only the layers before it, keeps
their paths, and its logits are a Dense of the pooled feature of the uncut model (numpy)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnnlab import models, train
from cnnlab.train import cut


def test_cut_small_cnn_is_dense_of_pooled_stage():
  full = models.create("small_cnn", width=4, num_classes=10)
  model = cut.cut(full, "stage2", 3)
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 8, 8, 1)), jnp.float32)
  v = model.init(jax.random.key(0), x)
  assert list(v["params"]) == ["conv0", "norm0", "conv1", "norm1", cut.HEAD]
  assert list(v["batch_stats"]) == ["norm0", "norm1"]
  vf = full.init(jax.random.key(1), x)  # the uncut model with the cut model's first layers
  for col in vf:
    vf[col] = {**vf[col], **{k: w for k, w in v[col].items() if k != cut.HEAD}}
  _, feats = models.extract_features(full, vf, x, names=["stage2"])
  hd = v["params"][cut.HEAD]
  want = np.asarray(feats["stage2"]).mean(axis=(1, 2)) @ np.asarray(hd["kernel"]) + np.asarray(
      hd["bias"])
  np.testing.assert_allclose(np.asarray(model.apply(v, x)), want, rtol=1e-5, atol=1e-6)
  # train mode: only the kept BatchNorms' statistics are updated
  _, upd = model.apply(v, x, train=True, mutable=["batch_stats"])
  assert list(upd["batch_stats"]) == ["norm0", "norm1"]


@pytest.mark.parametrize("name,stage,gone", [
    ("resnet18", "stage2", ("layer3_0", "layer4_1", "fc")),
    ("mobilenet_v2", "stage3", ("block8", "head_conv", "classifier")),
    ("googlenet", "stage1", ("inception4a", "inception5b", "fc")),
])
def test_cut_leaves_out_later_layers(name, stage, gone):
  model = models.create(name, num_classes=10)
  shape = models.get_spec(name).test_input_shape
  x = jax.ShapeDtypeStruct((1, *shape), jnp.float32)
  full = jax.eval_shape(model.init, jax.random.key(0), x)["params"]
  kept = jax.eval_shape(cut.cut(model, stage, 5).init, jax.random.key(0), x)["params"]
  assert set(kept) - {cut.HEAD} < set(full) and not set(gone) & set(kept)
  assert all(jax.tree.map(lambda a, b: a.shape == b.shape, kept[k], full[k]) for k in kept
             if k != cut.HEAD)
  assert kept[cut.HEAD]["kernel"].shape[1] == 5


def test_unknown_cut_is_one_line_error():
  config = train.base()
  config.model.name = "small_cnn"
  config.transfer.cut_after = "stage9"
  model = models.create("small_cnn", width=4)
  with pytest.raises(train.ConfigError, match=r"^config\.transfer\.cut_after='stage9' is invalid: "
                     r"model 'small_cnn' produces the features \['pre_logits', 'stage1', 'stage2', "
                     r"'stage3'\]"):
    cut.from_config(config, model, (8, 8, 1), 10)
  config.transfer.cut_after = ""
  assert cut.from_config(config, model, (8, 8, 1), 10) is model

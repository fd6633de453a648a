"""Kim's CNN against a numpy loop over its definition (lookups, zero-padded windows, max over
windows with a real token, each filter applied to both channels and added), padding
invariance, the four variants, and the max-norm projection against numpy."""

import flax.linen
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cnnlab import models
from cnnlab import nn as cnn
from cnnlab.models import kim_cnn

VOCAB, DIM = 11, 4
SMALL = dict(vocab_size=VOCAB, embed_dim=DIM, num_classes=3, filter_widths=(2, 3),
             num_filters=5)


def kim_reference(tokens, tables, p, widths):
  """Numpy, example by example: ``tables`` are the channels' embedding matrices."""
  feats = []
  for sent in np.asarray(tokens):
    row = []
    for h in widths:
      k, b = p[f"conv{h}"]["kernel"], p[f"conv{h}"]["bias"]  # (h, D, F), (F,)
      best = np.full(k.shape[-1], -np.inf)
      for t in range(len(sent) + h - 1):  # windows over the sentence padded h-1 both sides
        idx = [t - (h - 1) + j for j in range(h)]
        real = [0 <= i < len(sent) and sent[i] != 0 for i in idx]
        if not any(real):
          continue
        val = b.astype(np.float64).copy()
        for table in tables:  # each filter on each channel, results added
          for j, (i, ok) in enumerate(zip(idx, real)):
            if ok:
              val += table[sent[i]] @ k[j]
        best = np.maximum(best, val)
      row.append(np.maximum(best, 0.0) if np.isfinite(best).all() else np.zeros_like(best))
    feats.append(np.concatenate(row))
  return np.stack(feats) @ p["fc"]["kernel"] + p["fc"]["bias"]


def _tokens():
  rng = np.random.default_rng(0)
  t = rng.integers(1, VOCAB, (4, 7))
  t[0, 5:] = 0       # trailing padding
  t[1, :2] = 0       # leading padding
  t[2, 1:] = 0       # one word: shorter than every filter
  t[3, 3] = 0        # a hole
  return jnp.asarray(t, jnp.int32)


def _params(model, tokens, bias=2.0):
  """Init, then conv biases large: an all-padding window (value = bias) would win if counted."""
  p = jax.tree.map(np.asarray, model.init(jax.random.key(1), tokens)["params"])
  for h in model.filter_widths:
    p[f"conv{h}"] = {**p[f"conv{h}"], "bias": np.full_like(p[f"conv{h}"]["bias"], bias)}
  return p


@pytest.mark.parametrize("impl", ["lax", "im2col"])
def test_rand_matches_reference_and_padding_never_wins(impl):
  model = kim_cnn.KimCNN(**SMALL, conv_impl=impl)
  tokens = _tokens()
  p = _params(model, tokens)
  got = jax.jit(model.apply)({"params": p}, tokens)
  ref = kim_reference(tokens, [p["embedding"]["embedding"]], p, (2, 3))
  np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
  for padded in (jnp.pad(tokens, ((0, 0), (0, 9))), jnp.pad(tokens, ((0, 0), (3, 0)))):
    np.testing.assert_allclose(model.apply({"params": p}, padded), got, rtol=1e-6, atol=1e-6)
  # the padding row of the table is never read
  p2 = {**p, "embedding": {"embedding": p["embedding"]["embedding"].copy()}}
  p2["embedding"]["embedding"][0] = 100.0
  np.testing.assert_allclose(model.apply({"params": p2}, tokens), got, rtol=1e-6, atol=1e-6)


def test_variants():
  vectors = np.random.default_rng(2).standard_normal((VOCAB, DIM)).astype(np.float32)
  init = kim_cnn.from_vectors(vectors)
  tokens = _tokens()
  static = kim_cnn.KimCNN(**SMALL, variant="static", embedding_init=init)
  p = _params(static, tokens)
  assert set(p) == {"embedding_static", "conv2", "conv3", "fc"}
  np.testing.assert_array_equal(p["embedding_static"]["embedding"], vectors)
  g = jax.grad(lambda p: static.apply({"params": p}, tokens).sum())(p)
  assert not np.any(g["embedding_static"]["embedding"]) and np.any(g["conv2"]["kernel"])

  non_static = static.clone(variant="non-static")
  q = _params(non_static, tokens)
  assert set(q) == {"embedding", "conv2", "conv3", "fc"}
  np.testing.assert_array_equal(q["embedding"]["embedding"], vectors)
  g = jax.grad(lambda p: non_static.apply({"params": p}, tokens).sum())(q)
  assert np.any(g["embedding"]["embedding"])

  multi = static.clone(variant="multichannel")
  m = _params(multi, tokens)
  m["embedding"] = {"embedding": vectors + 0.3}  # the non-static channel after some training
  ref = kim_reference(tokens, [vectors, vectors + 0.3], m, (2, 3))
  np.testing.assert_allclose(multi.apply({"params": m}, tokens), ref, rtol=1e-5, atol=1e-5)


def test_bad_inputs():
  tokens = _tokens()
  with pytest.raises(ValueError, match="variant='static' needs pretrained vectors"):
    kim_cnn.KimCNN(**SMALL, variant="static").init(jax.random.key(0), tokens)
  with pytest.raises(ValueError, match=r"variant='cnn' is not one of \('rand', 'static'"):
    kim_cnn.KimCNN(**SMALL, variant="cnn").init(jax.random.key(0), tokens)
  with pytest.raises(ValueError, match=r"pretrained vectors have shape \(3, 4\).*\(11, 4\)"):
    kim_cnn.KimCNN(**SMALL, variant="non-static",
                   embedding_init=kim_cnn.from_vectors(np.zeros((3, 4)))).init(
                       jax.random.key(0), tokens)
  with pytest.raises(ValueError, match=r"\(N, L\) integer token ids"):
    kim_cnn.KimCNN(**SMALL).init(jax.random.key(0), tokens.astype(jnp.float32))


def _numpy_max_norm(w, s):
  out = w.astype(np.float64).copy()
  for j in range(w.shape[1]):
    n = np.sqrt(np.sum(out[:, j] ** 2))
    if n > s:
      out[:, j] *= s / n
  return out


def test_max_norm_against_numpy():
  rng = np.random.default_rng(3)
  w = rng.standard_normal((300, 6)).astype(np.float32)
  w[:, 1] *= 0.05  # under the limit: untouched
  w[:, 2] *= 10.0
  params = {"fc": {"kernel": jnp.asarray(w), "bias": jnp.ones(6)},
            "conv3": {"kernel": jnp.asarray(rng.standard_normal((3, 4, 5)) * 9)}}
  out = kim_cnn.max_norm(params, 3.0)
  np.testing.assert_allclose(out["fc"]["kernel"], _numpy_max_norm(w, 3.0), rtol=1e-6, atol=1e-6)
  np.testing.assert_array_equal(out["fc"]["kernel"][:, 1], w[:, 1])
  np.testing.assert_array_equal(out["fc"]["bias"], params["fc"]["bias"])
  np.testing.assert_array_equal(out["conv3"]["kernel"], params["conv3"]["kernel"])

  grads = jax.tree.map(lambda a: jnp.asarray(rng.standard_normal(a.shape), jnp.float32), params)
  tx = optax.chain(optax.sgd(0.5), kim_cnn.max_norm_projection(3.0))
  state = tx.init(params)
  updates, _ = jax.jit(tx.update)(grads, state, params)
  new = optax.apply_updates(params, updates)
  stepped = jax.tree.map(lambda p, g: p - 0.5 * g, params, grads)
  np.testing.assert_allclose(new["fc"]["kernel"],
                             _numpy_max_norm(np.asarray(stepped["fc"]["kernel"]), 3.0),
                             rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(new["conv3"]["kernel"], stepped["conv3"]["kernel"], rtol=1e-6)
  assert float(jnp.linalg.norm(new["fc"]["kernel"], axis=0).max()) <= 3.0 + 1e-5
  with pytest.raises(ValueError, match="needs params"):
    tx.update(grads, state)


def test_default_config_abstract_and_conv_impl():
  impls = []

  def record(next_fun, args, kwargs, context):
    if isinstance(context.module, cnn.Conv) and context.method_name == "__call__":
      impls.append(context.module.impl)
    return next_fun(*args, **kwargs)

  model = models.create("kim_cnn", conv_impl="shift")
  x = jax.ShapeDtypeStruct((50, *models.get_spec("kim_cnn").input_shape), jnp.int32)
  with flax.linen.intercept_methods(record):
    v = jax.eval_shape(model.init, jax.random.key(0), x)
  assert impls == ["shift"] * 3
  # 20,000 x 300 embedding + (3 + 4 + 5) x 300 x 100 filters + 300 biases + 300 x 2 + 2
  assert sum(int(np.prod(a.shape)) for a in jax.tree.leaves(v)) == 6_360_902
  out = jax.eval_shape(lambda v, x: model.apply(v, x, train=True,
                                                rngs={"dropout": jax.random.key(1)}), v, x)
  assert out.shape == (50, 2)

"""``scripts/evaluate.py`` on another folder of MR sentences maps them with the run's vocabulary
(``WORKDIR/vocab.json``; unknown words -> 1), never with one rebuilt from the evaluation data:
its loss equals that of the restored model on ids encoded here from the JSON file alone."""

import json

import jax
import numpy as np
import orbax.checkpoint as ocp

from cnnlab import models, train
from cnnlab.train import validate, workdir as workdir_lib
from conftest import REPO, evaluate_cli, load_config_module

CONFIG = REPO / "configs" / "sequence" / "kim_cnn_mr.py"
NEG = "dull bad boring awful slow flat tired weak".split()
POS = "great fine moving smart warm funny bright rich".split()


def _folder(path, rng, words_neg, words_pos, n):
  path.mkdir()
  for name, words in (("rt-polarity.neg", words_neg), ("rt-polarity.pos", words_pos)):
    lines = [" ".join(rng.choice(words, rng.integers(3, 8))) for _ in range(n)]
    (path / name).write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
  return path


def _restore(workdir, step):
  path = workdir_lib.checkpoints_dir(workdir) / str(step) / "state"
  ckptr = ocp.StandardCheckpointer()
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
                        ckptr.metadata(path).item_metadata.tree)
  return ckptr.restore(path, target)["params"]


def test_evaluate_other_sentences_with_the_runs_vocabulary(tmp_path, capsys):
  rng = np.random.default_rng(0)
  train_dir = _folder(tmp_path / "train", rng, NEG, POS, 40)
  # Other sentences: the training words plus words the run never saw (-> unknown).
  other = _folder(tmp_path / "other", rng, NEG + ["grim", "soggy"], POS + ["witty", "lush"], 7)
  tfds_dir, run = tmp_path / "tfds", tmp_path / "run"
  c = load_config_module(CONFIG).get_config("smoke")
  c.data.update(manual_dir=str(train_dir), data_dir=str(tfds_dir))
  train.train_and_evaluate(c, str(run))
  vocab_bytes = (run / "vocab.json").read_bytes()

  result = evaluate_cli(f"{CONFIG}:smoke", run, capsys, f"--config.data.manual_dir={other}",
                        "--config.data.eval_split=all", f"--config.data.data_dir={tfds_dir}")
  assert (run / "vocab.json").read_bytes() == vocab_bytes  # read, not rewritten

  doc = json.loads(vocab_bytes)
  index = {w: i for i, w in enumerate(doc["tokens"])}
  assert "witty" not in index and "dull" in index
  sentences, labels = [], []
  for name, label in (("rt-polarity.neg", 0), ("rt-polarity.pos", 1)):
    for line in (other / name).read_text("latin-1").splitlines():
      sentences.append([index.get(w, 1) for w in line.split()])
      labels.append(label)
  ids = np.zeros((len(sentences), doc["max_len"]), np.int32)
  for i, s in enumerate(sentences):
    ids[i, :len(s)] = s[:doc["max_len"]]
  model = models.create("kim_cnn", **validate.model_kwargs(c, num_classes=2))
  logits = np.asarray(model.apply({"params": _restore(run, 2)}, ids, train=False), np.float64)
  z = logits - logits.max(-1, keepdims=True)
  ce = -(z[np.arange(len(labels)), labels] - np.log(np.exp(z).sum(-1)))
  assert result["num_examples"] == len(labels) == 14 and result["step"] == 2
  np.testing.assert_allclose(result["loss"], ce.mean(), rtol=1e-5)
  np.testing.assert_allclose(result["accuracy"], np.mean(logits.argmax(-1) == labels))

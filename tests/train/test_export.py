"""``cnnlab.train.export``: the serialised inference function, reloaded from bytes, gives the logits
of the checkpoint's model applied directly, for any batch size."""

import json
import subprocess
import sys

import jax
import numpy as np

from cnnlab import data, train
from cnnlab.data import pipeline
from cnnlab.train import export, steps, workdir as workdir_lib
from conftest import REPO


def test_round_trip_equals_the_model_for_any_batch(digits_config, tmp_path):
  w = tmp_path / "w"
  train.train_and_evaluate(digits_config, str(w))
  out = subprocess.run([sys.executable, "scripts/export.py", f"--workdir={w}", "--step=best"],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  record = json.loads(out.stdout.strip().splitlines()[-1])
  assert record["step"] == 2 and record["input_shape"] == ["B", 8, 8, 1]
  predict = export.load(record["path"])

  config, model, variables = workdir_lib.load(w, 2)
  src, info = data.load("digits", "test")
  batches = pipeline.eval_batches(src, info, config.data, batch_size=7)
  x = next(iter(batches))["inputs"]
  for n in (1, 7):
    want = model.apply(variables, steps.preprocess(x[:n], config.data.image_size), train=False)
    np.testing.assert_allclose(np.asarray(predict(x[:n])), np.asarray(want), rtol=1e-5,
                               atol=1e-6)
  assert jax.tree.leaves(variables)  # the artifact closed over real parameters


def test_nothing_is_written_for_a_workdir_without_checkpoints(tmp_path):
  out = subprocess.run([sys.executable, "scripts/export.py", f"--workdir={tmp_path}"], cwd=REPO,
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 2 and not (tmp_path / "export").exists()
  assert out.stderr.strip().splitlines() == [
      f"error: --step='latest' is invalid: {tmp_path}/checkpoints holds checkpoints at steps "
      "none (allowed: 'latest', 'best' or one of those)"]


def test_an_existing_out_file_is_never_overwritten(tmp_path):
  """Checked before the workdir is even read (it holds no run here)."""
  keep = tmp_path / "mine.bin"
  keep.write_bytes(b"a user's file")
  out = subprocess.run([sys.executable, "scripts/export.py", f"--workdir={tmp_path / 'w'}",
                        f"--out={keep}"], cwd=REPO, capture_output=True, text=True, timeout=300)
  assert out.returncode == 2 and keep.read_bytes() == b"a user's file"
  assert out.stderr.strip().splitlines() == [
      f"error: --out={keep} already exists (or its .json); choose another path"]

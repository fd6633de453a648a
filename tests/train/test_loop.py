"""The training loop: every config runs, resume is exact, 1 device == 8 devices, one compile,
eval counts every example once."""

import shutil
import subprocess
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from cnnlab import data, launch, models, train
from cnnlab.train import workdir as workdir_lib
from conftest import REPO, load_config_module

# Training configs: everything under configs/ except benchmark and analysis (non-training) ones,
# each zoo family by its :arg.
ZOO = REPO / "configs" / "zoo" / "mnist8k.py"
CONFIGS = sorted((p, "") for p in (REPO / "configs").rglob("*.py")
                 if not {"bench", "analysis", "zoo"} & set(p.relative_to(REPO / "configs").parts))
CONFIGS += [(ZOO, name) for name in load_config_module(ZOO).FAMILIES]
IDS = [p.stem + (f":{arg}" if arg else "") for p, arg in CONFIGS]


def saved_state(workdir, step):
  """The train state saved at ``step``, restored onto this process's first device."""
  path = workdir_lib.checkpoints_dir(workdir) / str(step) / "state"
  ckptr = ocp.StandardCheckpointer()
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
                        ckptr.metadata(path).item_metadata.tree)
  return ckptr.restore(path, target)


# Configs whose 2-step run takes >= 7 s on 2 cores (mostly compiling the train step):
# the default suite traces their first step abstractly; `pytest -m slow` runs the 2 steps.
HEAVY = {f"mnist8k:{name}" for name in ("googlenet", "densenet_bc_100", "vgg11_bn", "resnet18",
                                         "efficientnet_b0", "mobilenet_v2", "shufflenet_v2_x0_5",
                                         "squeezenet1_1", "allcnn_c", "resnet20", "alexnet")} | {
                                             "imagenet_resnet50", "m5_fsdd", "wavenet_fsdd",
                                             "kim_cnn_mr", "tcn_copy", "wavenet_generate_fsdd",
                                             "c3d_moving_digits", "r2plus1d_moving_digits",
                                             "slow_fusion_moving_digits", "fusion_table",
                                             "single_frame_moving_digits",
                                             "fcn8s_digit_segmentation", "segmentation_table",
                                             "dilated_context_digit_segmentation",
                                             "checkerboard", "unet_digit_segmentation",
                                             "fsdd_small_different", "fsdd_large_different",
                                             "cifar10_resnet20", "vae_mnist8k", "tcn_seqmnist",
                                             "tcn_pmnist", "tcn_adding", "denoise_mnist8k",
                                             "digits_small_similar", "digits_large_similar",
                                             "lstm_seqmnist", "norm_batch_size"}


def _smoke_config(path, arg=""):
  module = load_config_module(path)
  config = module.get_config(",".join(filter(None, [arg, "smoke"])))
  if config.data.name not in data.BUILTIN:  # needs a download / TensorFlow: local stand-in data
    config = module.get_config("smoke,local")
    assert config.data.name == "digits"
  if config.data.manual_dir and not (REPO / config.data.manual_dir).exists():
    pytest.skip(f"{path.name} reads {config.data.manual_dir}, which is absent here")
  return config


@pytest.mark.parametrize("path,arg", [c if i not in HEAVY else
                                      pytest.param(*c, marks=pytest.mark.slow)
                                      for c, i in zip(CONFIGS, IDS)], ids=IDS)
def test_every_config_runs_two_steps(path, arg, tmp_path):
  config = _smoke_config(path, arg)
  result = train.train_and_evaluate(config, str(tmp_path))
  assert np.isfinite(result["loss"]) and result["num_examples"] > 0
  rows = workdir_lib.read_metrics(tmp_path)
  assert [r["step"] for r in rows if r["kind"] == "train"] == [1, 2]
  assert workdir_lib.steps(tmp_path) == [2] and workdir_lib.config_path(tmp_path).exists()


# The zoo families share configs/zoo/mnist8k.py but for the model, whose jitted train forward
# tests/models/test_registry.py compiles: one family traces here by default (resnet20, also
# trained for 2 steps by the README test), the others (1-12 s each) with -m slow.
ZOO_TRACED = "mnist8k:resnet20"


@pytest.mark.parametrize("path,arg", [
    c if not i.startswith("mnist8k:") or i == ZOO_TRACED else
    pytest.param(*c, marks=pytest.mark.slow) for c, i in zip(CONFIGS, IDS) if i in HEAVY],
                         ids=[i for i in IDS if i in HEAVY])
def test_heavy_config_first_step_traces(path, arg):
  """Validation, data, model and one train step, abstractly (no compile)."""
  config = _smoke_config(path, arg)
  out = train.dry_run(config)
  assert out["num_params"] > 0 and out["train_examples"] > config.batch_size


def test_dry_run_catches_what_training_would():
  config = load_config_module(REPO / "configs" / "lenet5_digits.py").get_config("smoke")
  config.data.image_size = 8
  with pytest.raises(train.ConfigError, match="image_size=8"):
    train.dry_run(config)


def test_stop_and_resume_is_bit_identical(digits_config, tmp_path):
  digits_config.num_train_steps = 6
  digits_config.checkpoint_every_steps = 3
  digits_config.keep_checkpoints = 5
  full, resumed = tmp_path / "full", tmp_path / "resumed"
  train.train_and_evaluate(digits_config, str(full))
  shutil.copytree(full, resumed)
  # as if the run had stopped after step 3
  shutil.rmtree(workdir_lib.checkpoints_dir(resumed) / "6")
  train.train_and_evaluate(digits_config, str(resumed))
  a, b = saved_state(full, 6), saved_state(resumed, 6)
  assert int(b["step"]) == 6
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


_SUBPROCESS = """
import sys, numpy as np, jax
sys.path.insert(0, {tests!r})
from conftest import load_config_module
from cnnlab import train
c = load_config_module({config!r}).get_config("smoke")
c.num_train_steps, c.optimizer.name, c.optimizer.learning_rate = 3, "momentum", 0.05
assert jax.device_count() == {n}, jax.devices()
train.train_and_evaluate(c, {workdir!r})
"""


def test_one_and_eight_devices_agree(tmp_path):
  """Same 3 steps on 1 CPU device (in this process) and on 8 fake ones (subprocess).

  SGD with momentum: its update is linear in the gradient, so the 1e-7-level reordering of the
  cross-device gradient sum stays at that level (Adam divides by sqrt(v) and can turn a
  sign-flip of a ~0 gradient into a full-learning-rate step)."""
  config = str(REPO / "configs" / "lenet5_digits.py")
  ref = tmp_path / "one"
  c = load_config_module(config).get_config("smoke")
  c.num_train_steps, c.optimizer.name, c.optimizer.learning_rate = 3, "momentum", 0.05
  assert jax.device_count() == 1
  train.train_and_evaluate(c, str(ref))
  env = launch.child_env(8)
  code = _SUBPROCESS.format(tests=str(REPO / "tests"), config=config, n=8,
                            workdir=str(tmp_path / "eight"))
  subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=REPO, timeout=300)
  a, b = saved_state(ref, 3), saved_state(tmp_path / "eight", 3)
  for x, y in zip(jax.tree.leaves(a["params"]), jax.tree.leaves(b["params"])):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=1e-5)


@pytest.mark.parametrize("accum", [(1, "multisteps"), (2, "multisteps"), (2, "scan")],
                         ids=["plain", "multisteps", "scan"])
def test_train_step_compiles_once(digits_config, tmp_path, caplog, accum):
  """Also with gradient accumulation: ``multisteps`` calls the one compiled step per micro-batch."""
  digits_config.num_train_steps = 5
  digits_config.eval_every_steps = 2
  digits_config.grad_accum_steps, digits_config.grad_accum_impl = accum
  with jax.log_compiles(True):
    train.train_and_evaluate(digits_config, str(tmp_path))
  compiles = [r.getMessage() for r in caplog.records if "Compiling" in r.getMessage()]
  assert sum("train_step" in m for m in compiles) == 1, compiles
  assert sum("eval_step" in m for m in compiles) == 1, compiles


def test_eval_counts_every_example_once(digits_config, tmp_path):
  """Padded+masked batched eval == one unbatched forward over the whole split (brute force)."""
  digits_config.eval_batch_size = 64  # 360 test examples: the last batch is padded
  train.train_and_evaluate(digits_config, str(tmp_path))
  result = train.evaluate(digits_config, str(tmp_path))
  source, info = data.load("digits", "test")
  x = np.stack([source[i]["image"] for i in range(len(source))]).astype(np.float32) / 255.0
  y = np.array([source[i]["label"] for i in range(len(source))])
  x = (x - 0.3) / 0.4
  x = jax.image.resize(x, (len(x), 32, 32, 1), "bilinear")
  params = saved_state(tmp_path, 2)["params"]
  logits = models.create("lenet5").apply({"params": params}, x)
  assert result["num_examples"] == len(source) == 360
  assert result["accuracy"] == pytest.approx(float(np.mean(np.argmax(logits, -1) == y)))


def test_bfloat16_compute_keeps_float32_params(digits_config, tmp_path):
  digits_config.half_precision = True
  result = train.train_and_evaluate(digits_config, str(tmp_path))
  assert np.isfinite(result["loss"])
  params = saved_state(tmp_path, 2)["params"]
  assert {np.asarray(p).dtype for p in jax.tree.leaves(params)} == {np.dtype("float32")}

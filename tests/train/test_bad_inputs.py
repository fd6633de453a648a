"""Every bad command line, config field or data input: exactly one ``error:`` line on stderr
naming the field (or file) and what is allowed, exit code 2, nothing compiled, nothing written.

The table runs in-process through ``cli.execute`` (the same parsing and error handling as the
scripts); a few real subprocesses check the scripts' exit code, stderr and ``--verbose``."""

import gzip
import subprocess
import sys
import time

import jax
import pytest

from cnnlab import data, experiments, train
from cnnlab.train import cli, errors
from conftest import REPO

DIGITS = f"{REPO}/configs/lenet5_digits.py"


def _cfg(tmp_path, *lines):
  """A config file: lenet5_digits:smoke with ``lines`` applied to ``c``."""
  body = "\n".join(f"  {ln}" for ln in lines)
  path = tmp_path / "cfg.py"
  path.write_text(f"import importlib.util\n"
                  f"spec = importlib.util.spec_from_file_location('d', {DIGITS!r})\n"
                  "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
                  "def get_config(arg=None):\n  c = m.get_config('smoke')\n"
                  f"{body}\n  return c\n")
  return f"--config={path}"


def _idx_folder(tmp_path, images=b"\x00\x00\x08\x03garbage"):
  d = tmp_path / "idx"
  d.mkdir()
  (d / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(images))
  (d / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01"))
  return str(d)


# id -> (argv after the program name, given tmp_path; substrings the error line must hold).
# ``{w}`` is the workdir; the default config is lenet5_digits:smoke.
S = f"--config={DIGITS}:smoke"
CASES = {
    # the command line
    "unknown_override": ([S, "--config.optimizer.lerning_rate=0.1"],
                         ["config.optimizer.lerning_rate is not a field",
                          "did you mean config.optimizer.learning_rate"]),
    "unknown_top_field": ([S, "--config.num_train_step=3"],
                          ["config.num_train_step is not a field", "num_train_steps"]),
    "unknown_section": ([S, "--config.optimiser.name=sgd"], ["config.optimiser", "optimizer"]),
    "int_given_text": ([S, "--config.batch_size=abc"], ["config.batch_size='abc' is invalid"]),
    "int_given_float": ([S, "--config.batch_size=1.5"], ["config.batch_size='1.5' is invalid"]),
    "bool_given_text": ([S, "--config.half_precision=maybe"], ["config.half_precision"]),
    "bad_arg": ([f"--config={DIGITS}:smok"], ["config arg 'smok' is invalid", "smoke"]),
    "bad_arg_value": ([f"--config={DIGITS}:smoke=3"], ["config arg 'smoke=3' is invalid"]),
    "missing_config_file": ([f"--config={REPO}/configs/nope.py"], ["--config cannot be loaded",
                                                                   "nope.py"]),
    "no_config_flag": ([], ["--config is required"]),
    "unexpected_argument": ([S, "extra"], ["unexpected arguments ['extra']"]),
    # names
    "model_name": ([S, "--config.model.name=lenet6"], ["model.name='lenet6'", "'lenet5'"]),
    "optimizer_name": ([S, "--config.optimizer.name=adm"], ["optimizer.name='adm'", "adamw"]),
    "schedule": ([S, "--config.optimizer.schedule=linear"], ["schedule='linear'", "cosine"]),
    "nonfinite_policy": ([S, "--config.nonfinite_policy=ignore"], ["nonfinite_policy='ignore'",
                                                                  "'skip'"]),
    "experiment": ([S, "--config.experiment=trian"], ["config.experiment='trian'", "train"]),
    "loss_scale": ([S, "--config.loss_scale=dynamc"], ["config.loss_scale='dynamc'", "'dynamic'"]),
    "half_precision_dtype": ([S, "--config.half_precision_dtype=fp16"],
                             ["config.half_precision_dtype='fp16'", "'float16'"]),
    # counts and ranges
    "batch_zero": ([S, "--config.batch_size=0"], ["batch_size=0", "> 0"]),
    "loss_scale_init": ([S, "--config.loss_scale_init=0"], ["loss_scale_init=0", "> 0"]),
    "eval_batch_negative": ([S, "--config.eval_batch_size=-1"], ["eval_batch_size=-1", "> 0"]),
    "train_steps_negative": ([S, "--config.num_train_steps=-5"], ["num_train_steps=-5", ">= 0"]),
    "epochs_zero": ([S, "--config.num_train_steps=0", "--config.num_epochs=0"],
                    ["num_epochs=0", "> 0"]),
    "log_every_zero": ([S, "--config.log_every_steps=0"], ["log_every_steps=0", "> 0"]),
    "keep_zero": ([S, "--config.keep_checkpoints=0"], ["keep_checkpoints=0", "> 0"]),
    "eval_every_negative": ([S, "--config.eval_every_steps=-1"], ["eval_every_steps=-1", ">= 0"]),
    "ckpt_every_negative": ([S, "--config.checkpoint_every_steps=-3"],
                            ["checkpoint_every_steps=-3", ">= 0"]),
    "workers_negative": ([S, "--config.data.num_workers=-1"], ["num_workers=-1", ">= 0"]),
    "skips_zero": ([S, "--config.max_nonfinite_skips=0"], ["max_nonfinite_skips=0", "> 0"]),
    "profile_backwards": ([S, "--config.profile_steps=(3,1)"], ["profile_steps=(3, 1)",
                                                                 "0 <= start < stop"]),
    "accum_zero": ([S, "--config.grad_accum_steps=0"], ["grad_accum_steps=0", "> 0"]),
    "accum_indivisible": ([S, "--config.grad_accum_steps=3"], ["grad_accum_steps=3",
                                                               "batch_size=16", "divisible"]),
    "accum_impl": ([S, "--config.grad_accum_impl=loop"], ["grad_accum_impl='loop'", "'scan'"]),
    "ema_one": ([S, "--config.ema_decay=1.0"], ["ema_decay=1.0", "[0, 1)"]),
    "remat_policy": (lambda t: [_cfg(t, "c.model.name = 'resnet20'", "c.model.remat = 'some'")],
                     ["config.model.remat='some'", "'dots_saveable'"]),
    "lr_inf": ([S, "--config.optimizer.learning_rate=inf"], ["learning_rate=inf",
                                                            "finite number"]),
    "lr_nan": ([S, "--config.optimizer.learning_rate=nan"], ["learning_rate=nan"]),
    "lr_negative": ([S, "--config.optimizer.learning_rate=-0.1"], ["learning_rate=-0.1", "> 0"]),
    "momentum": ([S, "--config.optimizer.momentum=1.5"], ["momentum=1.5", "[0, 1)"]),
    "label_smoothing": ([S, "--config.optimizer.label_smoothing=1.0"],
                        ["label_smoothing=1.0", "[0, 1)"]),
    "weight_decay": ([S, "--config.optimizer.weight_decay=-1.0"], ["weight_decay=-1.0", ">= 0"]),
    "decay_epochs": ([S, "--config.optimizer.decay_epochs=(6,3)"], ["decay_epochs=(6, 3)",
                                                                   "increasing"]),
    "image_size_negative": ([S, "--config.data.image_size=-1"], ["image_size=-1", ">= 0"]),
    "crop_negative": ([S, "--config.data.random_crop_padding=-1"], ["random_crop_padding=-1"]),
    "std_zero": ([S, "--config.data.std=(0.0,)"], ["data.std=(0.0,)", "> 0"]),
    "std_length": ([S, "--config.data.mean=(0.1,0.2)"], ["data.std=(0.4,)", "as many entries"]),
    "batch_not_dividing": ([S, "--config.batch_size=4096"], ["batch_size=4096", "larger than"]),
    # against the data
    "mean_vs_channels": ([S, "--config.data.mean=(0.1,0.2,0.3)",
                          "--config.data.std=(1.0,1.0,1.0)"],
                         ["data.mean=(0.1, 0.2, 0.3)", "1 channel(s)", "1 or 1 entries"]),
    "image_size_small": ([S, "--config.data.image_size=8"], ["image_size=8", "lenet5"]),
    "train_split": ([S, "--config.data.train_split=trian"], ["data.train_split='trian'",
                                                            "['test', 'train']"]),
    "eval_slice": ([S, "--config.data.eval_split=test[:abc]"], ["data.eval_split='test[:abc]'",
                                                               "slicing syntax"]),
    "empty_train_slice": ([S, "--config.data.train_split=train[5:5]"],
                          ["data.train_split='train[5:5]'", "selects no examples"]),
    "train_slice_too_small": ([S, "--config.data.train_split=train[:10]"], ["batch_size=16",
                                                                          "larger than"]),
    "dataset_name": ([S, "--config.data.name=digitz"], ["data.name='digitz'", "'digits'"]),
    "manual_dir_missing": ([S, "--config.data.manual_dir=/nonexistent/idx"],
                           ["data.manual_dir='/nonexistent/idx'", "no such folder"]),
    "manual_dir_not_taken": ([S, f"--config.data.manual_dir={REPO}/configs"],
                             ["data.manual_dir=", "takes no manual_dir"]),
    "data_dir_is_file": ([S, f"--config.data.data_dir={REPO}/README.md"],
                         ["data.data_dir=", "not a folder"]),
    # model options the model lacks or rejects (the option is blamed, not the image size)
    "model_unknown_option": (lambda t: [_cfg(t, "c.model.depth = 3")],
                             ["config.model.depth=3", "no option(s) ['depth']"]),
    "model_conv_impl": ([S, "--config.model.conv_impl=fast"], ["config.model.conv_impl='fast'",
                                                              "'lax'"]),
    "model_c3_table": (lambda t: [_cfg(t, "c.model.c3_table = 'half'")],
                       ["config.model.c3_table='half'", "'lecun'"]),
    "model_num_classes": (lambda t: [_cfg(t, "c.model.num_classes = 3")],
                          ["config.model.num_classes=3", "10 classes"]),
    "augment_1d_data": (lambda t: [_cfg(t, "c.data.name = 'mnist1d'", "c.model.name = 'cnn1d'",
                                        "c.data.image_size = 0", "c.data.random_flip = True")],
                        ["config.data.random_flip=True", "not 2D images", "(40, 1)"]),
    "idx_files_garbage": (lambda t: [_cfg(t, "c.data.name = 'mnist'",
                                          f"c.data.manual_dir = {_idx_folder(t)!r}")],
                          ["config.data.manual_dir=", "train-images-idx3-ubyte"]),
    "idx_folder_empty": (lambda t: [_cfg(t, "c.data.name = 'mnist'",
                                         f"c.data.manual_dir = {str(t)!r}")],
                         ["config.data.manual_dir="]),
}


def _argv(case, tmp_path):
  args, _ = CASES[case]
  args = args(tmp_path) if callable(args) else args
  return ["prog", *args, f"--workdir={tmp_path / 'w'}"] if case != "no_config_flag" else [
      "prog", f"--workdir={tmp_path / 'w'}"]


@pytest.fixture(scope="module", autouse=True)
def _prepared_data():
  """Datasets prepared once beforehand (preparing prints TFDS progress bars)."""
  data.load("mnist1d", "train")


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_exit_2(case, tmp_path, capsys, caplog):
  argv = _argv(case, tmp_path)
  with jax.log_compiles(True):
    code = cli.execute(experiments.run, argv)
  out, err = capsys.readouterr()
  lines = [ln for ln in err.splitlines() if ln.strip()]
  assert code == errors.BAD_INPUT, err
  assert len(lines) == 1 and lines[0].startswith("error: "), err
  for part in CASES[case][1]:
    assert part in lines[0], lines[0]
  assert "Traceback" not in err and not out
  assert not [r for r in caplog.records if "Compiling" in r.getMessage()]
  assert not (tmp_path / "w").exists()


def test_at_least_40_cases():
  assert len(CASES) >= 40


def _script(*args):
  t0 = time.perf_counter()
  out = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True,
                       timeout=300)
  return out, time.perf_counter() - t0


@pytest.mark.parametrize("script,extra,part", [
    ("scripts/train.py", "--config.optimizer.lerning_rate=0.1", "did you mean"),
    ("scripts/run.py", "--config.model.conv_impl=fast", "config.model.conv_impl='fast'"),
    ("scripts/evaluate.py", "--config.batch_size=abc", "config.batch_size='abc'"),
])
def test_scripts_exit_2_with_one_line(tmp_path, script, extra, part):
  out, _ = _script(script, S, f"--workdir={tmp_path / 'w'}", extra)
  lines = [ln for ln in out.stderr.splitlines() if ln.startswith("error:")]
  assert out.returncode == 2, out.stderr[-2000:]
  assert len(lines) == 1 and part in lines[0] and "Traceback" not in out.stderr, out.stderr
  assert not (tmp_path / "w").exists()


def test_verbose_shows_the_traceback(tmp_path):
  out, _ = _script("scripts/train.py", S, f"--workdir={tmp_path}", "--config.batch_size=0",
                   "--verbose")
  assert out.returncode == 2 and "Traceback" in out.stderr
  assert out.stderr.strip().splitlines()[-1].startswith("error: config.batch_size=0")


def test_library_call_raises_config_error(digits_config, tmp_path):
  digits_config.num_train_steps = -5
  with pytest.raises(train.ConfigError, match="num_train_steps=-5"):
    train.train_and_evaluate(digits_config, str(tmp_path))


@pytest.mark.parametrize("extra", ["--config.num_train_steps=-5", "--config.data.std=(0.0,)",
                                   "--config.optimizer.lerning_rate=0.1"])
def test_plain_field_errors_before_jax_is_imported(tmp_path, extra):
  """A bad plain field (not the model's) is reported before JAX, Flax or the data libraries
  load: the error comes in well under 2 s (issue: 6.5-9.5 s before)."""
  code = ("import sys\nfrom cnnlab import experiments\nfrom cnnlab.train import cli\n"
          f"rc = cli.execute(experiments.run, ['run', {S!r}, '--workdir={tmp_path}/w', {extra!r}])\n"
          "heavy = sorted(m for m in ('jax', 'flax', 'optax', 'grain', 'orbax', "
          "'tensorflow_datasets', 'torch', 'sklearn') if m in sys.modules)\n"
          "print(rc, heavy)\n")
  out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                       timeout=120)
  assert out.stdout.strip() == "2 []", out.stdout + out.stderr[-2000:]
  assert out.stderr.startswith("error: config."), out.stderr

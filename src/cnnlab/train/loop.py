"""The training loop: ``train_and_evaluate(config, workdir)`` and ``evaluate(config, workdir)``.

Both validate the config first (clear errors before any data is prepared or code compiled).
Training resumes from the newest checkpoint of ``workdir`` that reads and verifies (train state
and input position), so a stopped run re-run with the same command ends with the same parameters
as an uninterrupted one. While it trains, the run holds the workdir's lock (one trainer per
workdir) and guards against non-finite steps (``config.nonfinite_policy``, checked on the host
only at log, eval and checkpoint steps). SIGTERM / SIGINT finish the current step, checkpoint it
and end the run with :class:`~cnnlab.train.errors.Stopped` (exit code 143 / 130); a second
signal exits at once. Multi-host runs stop at JAX's preemption sync point instead.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import signal
import sys
import threading
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from tqdm import tqdm

from cnnlab import data, models
from cnnlab.data import pipeline
from cnnlab.train import accum, checkpoint, mesh as mesh_lib, metrics, optim, profile, steps
from cnnlab.train import state as state_lib
from cnnlab.train import backend, validate, workdir as workdir_lib
from cnnlab.train.errors import ConfigError, NonFiniteError, Stopped
from cnnlab.train import cut, freeze, inflight, init_from


@dataclasses.dataclass
class _Setup:
  mesh: jax.sharding.Mesh
  info: data.DataInfo
  model: object
  input_shape: tuple      # the model's input, per example (after the step's preprocessing)
  task: steps.Task
  input_dtype: str = "float32"


def _load(config, split_field: str, workdir: str | None = None):
  """``data.load`` of ``config.data.<split_field>`` with the dataset options the config sets
  (``data.options``: the run's vocabulary in ``workdir``, if given, for ``mr``); a bad input is
  a :class:`ConfigError` naming the field."""
  d = config.data
  try:
    return data.load(d.name, d[split_field], data_dir=d.data_dir or None,
                     manual_dir=d.manual_dir or None, **_options(config, split_field, workdir))
  except data.DataError as e:
    field = split_field if e.field == "split" else e.field
    where = f"config.data.{field}={d[field]!r}" if field in d else f"the run's {field}"
    raise ConfigError(f"{where} is invalid: {e}") from None


def _labeled_subset(config, train_src, info):
  """``config.data.labels_per_class`` examples per class of the train split (all if 0/unset)."""
  try:
    return pipeline.labeled_subset(train_src, info, config.data)
  except ValueError as e:
    raise ConfigError(f"config.data.labels_per_class={config.data.labels_per_class!r} is "
                      f"invalid: {e}") from None


def _options(config, split_field: str, workdir) -> dict:
  """The dataset options of ``config.data`` for one split: ``data.eval_options`` (if set)
  replace those of the eval split (e.g. fsdd's held-out speaker)."""
  d = config.data
  out = data.options(d.name, d, workdir)
  extra = d.get("eval_options") or {}
  if split_field == "eval_split" and extra:
    picked = data.options(d.name, extra)
    unknown = sorted(set(extra) - set(picked))
    if unknown:
      raise ConfigError(f"config.data.eval_options.{unknown[0]} is invalid: not an option of "
                        f"dataset {d.name!r} (allowed: {sorted(data.options(d.name, d)) or 'none'}"
                        " as set in config.data)")
    out.update(picked)
  return out


def _task(config, info) -> steps.Task:
  """``config.task`` with the model's input dtype (registry), the mu-law levels, for
  regression the targets' standardisation (that of the inputs' channel 0), for segmentation the
  class count, for denoise ``config.noise_std``."""
  name = config.get("task", "classification")
  mean, std = (config.data.mean[0], config.data.std[0]) if name == "regression" else (0.0, 1.0)
  return steps.Task(name, models.get_spec(config.model.name).input_dtype,
                    config.model.get("quantization_levels", 256), float(mean), float(std),
                    num_classes=info.num_classes if name == "segmentation" else 0,
                    noise_std=float(config.get("noise_std", 0.0)))


def _setup(config, eval_info) -> _Setup:
  validate.check_data(config, eval_info)
  task = _task(config, eval_info)
  input_shape = tuple(eval_info.input_shape)
  if pipeline.is_audio(eval_info):  # waveforms cropped by the pipeline, maybe to log-mel
    try:
      input_shape = pipeline.example_shape(eval_info, config.data)
    except ValueError as e:  # names the data field
      raise ConfigError(f"config.{e}") from None
  s = config.data.image_size
  if pipeline.is_variable_size(eval_info) and not s:
    raise ConfigError(
        f"config.data.image_size=0 is invalid: dataset {config.data.name!r} has images of "
        f"varying size {input_shape}; set the size to crop and resize them to")
  if s and len(input_shape) == 3:
    input_shape = (s, s, input_shape[-1])
  # What the model is fed: the batch after the step's preprocessing (dtype, next_step's codes).
  x = jax.eval_shape(lambda x: steps.inputs_and_targets({"inputs": x, "label": x}, 0, task)[0],
                     jax.ShapeDtypeStruct((1, *input_shape), jnp.float32))
  input_shape, dtype = tuple(x.shape[1:]), jnp.dtype(x.dtype).name
  num_classes = (eval_info.num_classes if task.name not in validate.UNSUPERVISED_TASKS
                 else 0) or None
  model = models.create(config.model.name,
                        **validate.model_kwargs(config, num_classes=num_classes))
  validate.check_input_shape(config, model, input_shape, dtype)
  model = cut.from_config(config, model, input_shape, eval_info.num_classes)
  return _Setup(mesh_lib.make_mesh(), eval_info, model, input_shape, task, dtype)


def _optimizer(config, schedule) -> optax.GradientTransformation:
  tx = freeze.optimizer(config, schedule)  # optim.make_optimizer, split by config.transfer
  tx = optim.with_max_norm(config.optimizer, tx)  # optimizer.max_norm (Kim 2014), if set
  if config.get("nonfinite_policy", "stop") == "skip":
    tx = optax.apply_if_finite(tx, max_consecutive_errors=config.max_nonfinite_skips)
  return accum.wrap_optimizer(config, tx)  # optax.MultiSteps (grad_accum_impl='multisteps')


def _create_state(config, setup, tx):
  """The fresh train state (pure: jit it); with an EMA of the params if ``config.ema_decay``
  and a loss scale if ``config.loss_scale``."""
  dynamic = config.get("loss_scale", "none") == "dynamic"
  return state_lib.create(setup.model, tx, setup.input_shape, config.seed, setup.input_dtype,
                          ema=config.get("ema_decay", 0.0) > 0,
                          loss_scale=config.loss_scale_init if dynamic else 0.0,
                          loss_scale_period=config.get("loss_scale_period", 2000))


def _abstract_state(config, setup, tx):
  abstract = jax.eval_shape(lambda: _create_state(config, setup, tx))
  return mesh_lib.abstract_like(abstract, mesh_lib.replicated(setup.mesh))


def _train_step_fn(config, setup):
  """``steps.train_step`` with the config's static options (to jit)."""
  return functools.partial(steps.train_step, image_size=config.data.image_size,
                           label_smoothing=config.optimizer.label_smoothing,
                           frozen=freeze.from_config(config), task=setup.task,
                           accum_steps=accum.scan_steps(config),
                           ema_decay=config.get("ema_decay", 0.0))


def _eval_fn(config, setup):
  repl = mesh_lib.replicated(setup.mesh)
  return backend.jit(functools.partial(steps.eval_step, image_size=config.data.image_size,
                                       task=setup.task),
                     config, out_shardings=repl, donate_argnums=(1,))


def run_eval(config, setup, state, source, eval_step) -> dict:
  """Loss/accuracy over every example of ``source`` (padded last batch, masked)."""
  per_process = config.eval_batch_size // jax.process_count()
  m = jax.jit(functools.partial(steps.zero_metrics, setup.task),
              out_shardings=mesh_lib.replicated(setup.mesh))()
  throttle = inflight.Throttle()
  for batch in pipeline.eval_batches(source, setup.info, config.data, batch_size=per_process,
                                     process_index=jax.process_index(),
                                     process_count=jax.process_count()):
    m = eval_step(state, m, mesh_lib.shard_batch(batch, setup.mesh))
    throttle(m)
  return steps.summarize(m)


class _SignalStop:
  """While active, the first SIGTERM/SIGINT asks the loop to stop after the current step; a
  second one kills the process at once (the signal's default action)."""

  def __init__(self):
    self.signum = None
    self._old = {}

  def __enter__(self):
    if threading.current_thread() is threading.main_thread() and jax.process_count() == 1:
      for s in (signal.SIGTERM, signal.SIGINT):
        self._old[s] = signal.signal(s, self._handle)
    return self

  def __exit__(self, *exc):
    for s, handler in self._old.items():
      signal.signal(s, handler)

  def _handle(self, signum, frame):
    del frame
    if self.signum is not None:
      signal.signal(signum, signal.SIG_DFL)
      os.kill(os.getpid(), signum)
      return
    self.signum = signum
    print(f"\n{signal.Signals(signum).name}: stopping after this step and saving it (send it "
          "again to exit at once)", file=sys.stderr, flush=True)

  def requested(self, step: int) -> bool:
    if jax.process_count() > 1:  # JAX's preemption notice: every host stops at the same step
      from jax.experimental import multihost_utils  # noqa: PLC0415
      if multihost_utils.reached_preemption_sync_point(step):
        self.signum = signal.SIGTERM
    return self.signum is not None


def _check_finite(config, summary: dict, last_saved: int | None) -> None:
  """Raises :class:`NonFiniteError` if the steps ``summary`` covers break the policy."""
  policy, n = config.nonfinite_policy, config.max_nonfinite_skips
  kept = (f"the last checkpoint (step {last_saved}) is the last finite state" if last_saved
          else "no checkpoint was saved")
  first = summary["first_nonfinite"]
  if policy == "stop" and summary["nonfinite"]:
    raise NonFiniteError(
        f"step {first}: the loss or gradient norm is NaN/inf (config.nonfinite_policy='stop'); "
        f"training stopped and {kept}. Lower config.optimizer.learning_rate "
        f"(={config.optimizer.learning_rate}) or set config.nonfinite_policy='skip'")
  if policy == "skip" and summary["skip_run"] >= n:
    raise NonFiniteError(
        f"{n} NaN/inf steps in a row (config.max_nonfinite_skips={n}, first at step {first}) "
        f"with config.nonfinite_policy='skip'; training stopped and {kept}")


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains ``config`` in ``workdir`` (resuming if it holds checkpoints); returns final eval."""
  validate.check_static(config, jax.device_count())
  train_src, info = _load(config, "train_split", workdir)  # writes a vocabulary (mr) first
  train_src = _labeled_subset(config, train_src, info)
  eval_src, _ = _load(config, "eval_split", workdir)
  setup = _setup(config, info)
  steps_per_epoch = len(train_src) // config.batch_size
  if steps_per_epoch < 1:
    raise ConfigError(
        f"config.batch_size={config.batch_size} is invalid: it is larger than the train split "
        f"{config.data.train_split!r} ({len(train_src)} examples)")
  # Process 0 owns the workdir (the others wait for it at the barriers of `_train`).
  lock = workdir_lib.lock(workdir) if jax.process_index() == 0 else contextlib.nullcontext()
  with lock, _SignalStop() as stop:
    return _train(config, workdir, setup, train_src, eval_src, steps_per_epoch, stop)


def _train(config, workdir, setup, train_src, eval_src, steps_per_epoch, stop) -> dict:
  total = config.num_train_steps or int(round(config.num_epochs * steps_per_epoch))
  eval_every = config.eval_every_steps or steps_per_epoch
  ckpt_every = config.checkpoint_every_steps or steps_per_epoch
  schedule = optim.make_schedule(config.optimizer, total, steps_per_epoch)
  tx = _optimizer(config, schedule)
  repl = mesh_lib.replicated(setup.mesh)
  if jax.process_index() == 0:
    workdir_lib.set_aside_empty(workdir)
  mesh_lib.barrier("workdir checked")
  has_checkpoints = bool(workdir_lib.steps(workdir))
  abstract = _abstract_state(config, setup, tx)
  freeze.check(config, abstract.params)
  optim.check_max_norm(config, abstract.params)
  plan = None if has_checkpoints else init_from.prepare(config, abstract)  # before writing
  backend.check(config)  # compiles a probe: after every check that compiles nothing
  checkpoint.check_and_record_config(config, workdir, has_checkpoints)
  mngr = checkpoint.manager(workdir)

  def data_iter():
    return iter(pipeline.train_dataset(
        train_src, setup.info, config.data, batch_size=config.batch_size // jax.process_count(),
        seed=config.seed, process_index=jax.process_index(), process_count=jax.process_count()))

  it = data_iter()
  start, state = 0, None
  if has_checkpoints:
    start, state = checkpoint.restore_latest(mngr, workdir, _abstract_state(config, setup, tx),
                                             it)
  if state is None:
    it = data_iter() if has_checkpoints else it  # a failed restore may have moved it
    state = jax.jit(lambda: _create_state(config, setup, tx), out_shardings=repl)()
    if has_checkpoints:  # none of its own checkpoints was usable: a fresh start
      plan = init_from.prepare(config, abstract)
    state = init_from.apply(plan, state, workdir)  # config.init_from (a no-op if unset)
    if plan is not None:  # the EMA starts at the loaded parameters
      state = jax.jit(state_lib.restart_ema, out_shardings=repl, donate_argnums=0)(state)
  elif jax.process_index() == 0:
    print(f"Resuming from step {start} of {total} (checkpoint in {workdir})")
  if jax.process_index() == 0:
    workdir_lib.cut_metrics(workdir, start)  # rows of steps after the checkpoint come again

  train_step = backend.jit(_train_step_fn(config, setup), config, out_shardings=(repl, repl),
                           donate_argnums=(0, 1))
  eval_step = _eval_fn(config, setup)
  # Replicated constants are made by jitted functions: `device_put` cannot place an array on
  # another process's devices, and nothing is copied from the host in the step loop.
  base_key = jax.jit(lambda: jax.random.key(config.seed + 1), out_shardings=repl)()
  zero_train_metrics = jax.jit(functools.partial(steps.zero_train_metrics, setup.task),
                               out_shardings=repl)
  writer = metrics.MetricWriter(workdir)
  m = zero_train_metrics()
  if plan is not None:  # the initialised model's eval, before any step
    writer.write("eval", 0, {"epoch": 0.0, **run_eval(config, setup, state, eval_src, eval_step)})
  bar = tqdm(total=total, initial=start, desc="train", unit="step",
             disable=not config.progress_bar or jax.process_index() != 0)
  result, last_saved = {}, start or None
  prof = profile.Window(config.get("profile_steps"), workdir)
  t0, step = time.perf_counter(), start
  throttle = inflight.Throttle()
  try:
    while step < total:
      batch = prof.next_batch(it, step + 1)
      for micro in accum.host_micro_batches(config, batch):  # [batch] unless 'multisteps'
        state, m = train_step(state, m, mesh_lib.shard_batch(micro, setup.mesh), base_key)
        throttle(m)
      step += 1
      prof.step_done(step, (state, m))
      bar.update()
      log = step % config.log_every_steps == 0 or step == total
      evaluate_now = step % eval_every == 0 or step == total
      stopping = stop.requested(step)
      save = step % ckpt_every == 0 or step == total or stopping
      if not (log or evaluate_now or save):
        continue
      summary = steps.summarize(m)  # the only host fetch of the step loop, at these steps only
      if log:
        dt = time.perf_counter() - t0
        row = {"epoch": step / steps_per_epoch, "loss": summary["loss"],
               **{k: summary[k] for k in ("accuracy", "mae") if k in summary},
               "lr": float(schedule(step - 1)),
               "examples_per_s": summary["num_examples"] / dt,
               "nonfinite_steps": summary["nonfinite"]}
        writer.write("train", step, row)
        bar.set_postfix(loss=f"{row['loss']:.4f}", img_s=f"{row['examples_per_s']:.0f}")
      _check_finite(config, summary, last_saved)
      if log:
        m = zero_train_metrics()
        t0 = time.perf_counter()
      best = None
      if evaluate_now:
        result = run_eval(config, setup, state, eval_src, eval_step)
        writer.write("eval", step, {"epoch": step / steps_per_epoch, **result})
        if jax.process_index() == 0:
          bar.write(f"step {step}: eval {result}")
        best = {workdir_lib.BEST_METRIC: workdir_lib.score(result)}
        t0 = time.perf_counter()
      if save:
        checkpoint.save(mngr, step, state, it, keep=config.keep_checkpoints, metrics=best)
        last_saved = step
      if stopping:
        mngr.wait_until_finished()
        name = signal.Signals(stop.signum).name
        raise Stopped(f"stopped by {name} at step {step} of {total}; its checkpoint is saved in "
                      f"{workdir_lib.checkpoints_dir(workdir)}: run the same command to resume",
                      stop.signum)
  finally:
    prof.close()
    bar.close()
    mngr.wait_until_finished()
    mngr.close()
    writer.close()
  if not result:  # resumed after the last step: evaluate what is there
    result = run_eval(config, setup, state, eval_src, eval_step)
  return result


def dry_run(config: ml_collections.ConfigDict) -> dict:
  """Everything ``train_and_evaluate`` checks before its first step, then one train step traced
  abstractly (``jax.eval_shape``: nothing is compiled or run but the one-addition probes of the
  XLA options, ``backend.check``). Returns the parameter count."""
  validate.check_static(config, jax.device_count())
  train_src, info = _load(config, "train_split")
  train_src = _labeled_subset(config, train_src, info)
  setup = _setup(config, info)
  tx = _optimizer(config, optim.make_schedule(config.optimizer, 1, 1))
  state = jax.eval_shape(lambda: _create_state(config, setup, tx))
  shape = pipeline.example_shape(info, config.data)
  label = np.asarray(train_src[0][info.label_key])  # one example: the labels' shape and kind
  batch = {"inputs": jax.ShapeDtypeStruct((config.batch_size, *shape), jnp.float32),
           "label": jax.ShapeDtypeStruct((config.batch_size, *label.shape), jnp.float32 if
                                         np.issubdtype(label.dtype, np.floating) else jnp.int32)}
  freeze.check(config, state.params)
  optim.check_max_norm(config, state.params)
  init_from.prepare(config, state)
  jax.eval_shape(_train_step_fn(config, setup), state, steps.zero_train_metrics(setup.task),
                 batch, jax.random.key(0))
  backend.check(config)
  return {"num_params": sum(x.size for x in jax.tree.leaves(state.params)),
          "train_examples": len(train_src)}


def evaluate(config: ml_collections.ConfigDict, workdir: str, step: int | str = "latest") -> dict:
  """Restores ``workdir``'s checkpoint at ``step`` ('latest', 'best' or a number; verified
  against its digest) and evaluates it on ``config.data.eval_split``. Refuses a config whose
  model or input normalisation differs from the run's; creates nothing on disk."""
  validate.check_static(config, jax.device_count())
  if not workdir_lib.steps(workdir):
    raise ConfigError(f"--workdir={workdir!r} holds no checkpoint to evaluate (train it first)")
  checkpoint.check_same_model(config, workdir)
  step = workdir_lib.resolve_step(workdir, step)
  eval_src, info = _load(config, "eval_split", workdir)  # with the run's vocabulary (mr)
  setup = _setup(config, info)
  mngr = checkpoint.manager(workdir, read_only=True)
  run_config = workdir_lib.read_config(workdir)  # the run's optimizer and EMA: its state's tree
  tx = _optimizer(run_config, optim.make_schedule(config.optimizer, 1, 1))
  try:
    state = checkpoint.restore(mngr, step, _abstract_state(run_config, setup, tx))
  except checkpoint.CorruptCheckpoint as e:
    raise ConfigError(f"checkpoint {workdir_lib.checkpoints_dir(workdir) / str(step)} is "
                      f"corrupt: {e} (allowed: another --step, e.g. one of "
                      f"{workdir_lib.steps(workdir)})") from None
  finally:
    mngr.close()
  backend.check(config)
  return {"step": step, **run_eval(config, setup, state, eval_src, _eval_fn(config, setup))}

"""The training loop: ``train_and_evaluate(config, workdir)`` and ``evaluate(config, workdir)``.

Both validate the config first (clear errors before any data is prepared or code compiled).
Training resumes from the latest checkpoint in ``workdir`` (train state and input position), so
a stopped run re-run with the same command ends with the same parameters as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import functools
import time

import jax
import jax.numpy as jnp
import ml_collections
from tqdm import tqdm

from cnnlab import data, models
from cnnlab.data import pipeline
from cnnlab.train import checkpoint, mesh as mesh_lib, metrics, optim, state as state_lib, steps
from cnnlab.train import validate


@dataclasses.dataclass
class _Setup:
  mesh: jax.sharding.Mesh
  info: data.DataInfo
  model: object
  input_shape: tuple


def _load(config, split):
  return data.load(config.data.name, split, data_dir=config.data.data_dir or None,
                   manual_dir=config.data.manual_dir or None)


def _setup(config, eval_info) -> _Setup:
  model = models.create(config.model.name,
                        **validate.model_kwargs(config, num_classes=eval_info.num_classes))
  input_shape = tuple(eval_info.input_shape)
  s = config.data.image_size
  if pipeline.is_variable_size(eval_info) and not s:
    raise validate.ConfigError(
        f"config.data.image_size=0 is invalid: dataset {config.data.name!r} has images of "
        f"varying size {input_shape}; set the size to crop and resize them to")
  if s and len(input_shape) == 3:
    input_shape = (s, s, input_shape[-1])
  validate.check_input_shape(config, model, input_shape)
  return _Setup(mesh_lib.make_mesh(), eval_info, model, input_shape)


def _abstract_state(setup, tx, seed):
  abstract = jax.eval_shape(lambda: state_lib.create(setup.model, tx, setup.input_shape, seed))
  return mesh_lib.abstract_like(abstract, mesh_lib.replicated(setup.mesh))


def _eval_fn(config, setup):
  repl = mesh_lib.replicated(setup.mesh)
  return jax.jit(functools.partial(steps.eval_step, image_size=config.data.image_size),
                 out_shardings=repl, donate_argnums=(1,))


def run_eval(config, setup, state, source, eval_step) -> dict:
  """Loss/accuracy over every example of ``source`` (padded last batch, masked)."""
  per_process = config.eval_batch_size // jax.process_count()
  m = jax.device_put(steps.zero_metrics(), mesh_lib.replicated(setup.mesh))
  for batch in pipeline.eval_batches(source, setup.info, config.data, batch_size=per_process,
                                          process_index=jax.process_index(),
                                          process_count=jax.process_count()):
    m = eval_step(state, m, mesh_lib.shard_batch(batch, setup.mesh))
  return steps.summarize(m)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains ``config`` in ``workdir`` (resuming if it holds checkpoints); returns final eval."""
  validate.check_static(config, jax.device_count())
  train_src, info = _load(config, config.data.train_split)
  eval_src, _ = _load(config, config.data.eval_split)
  setup = _setup(config, info)
  steps_per_epoch = len(train_src) // config.batch_size
  if steps_per_epoch < 1:
    raise validate.ConfigError(
        f"config.batch_size={config.batch_size} is larger than the train split "
        f"{config.data.train_split!r} ({len(train_src)} examples)")
  total = config.num_train_steps or int(round(config.num_epochs * steps_per_epoch))
  eval_every = config.eval_every_steps or steps_per_epoch
  ckpt_every = config.checkpoint_every_steps or steps_per_epoch

  schedule = optim.make_schedule(config.optimizer, total, steps_per_epoch)
  tx = optim.make_optimizer(config.optimizer, schedule)
  repl = mesh_lib.replicated(setup.mesh)
  mngr = checkpoint.manager(workdir, config.keep_checkpoints)
  checkpoint.check_and_record_config(config, workdir, mngr.latest_step() is not None)

  it = iter(pipeline.train_dataset(
      train_src, info, config.data, batch_size=config.batch_size // jax.process_count(),
      seed=config.seed, process_index=jax.process_index(), process_count=jax.process_count()))
  start = mngr.latest_step() or 0
  if start:
    state = checkpoint.restore(mngr, start, _abstract_state(setup, tx, config.seed), it)
    if jax.process_index() == 0:
      print(f"Resuming from step {start} of {total} (checkpoint in {workdir})")
  else:
    state = jax.jit(lambda: state_lib.create(setup.model, tx, setup.input_shape, config.seed),
                    out_shardings=repl)()

  train_step = jax.jit(
      functools.partial(steps.train_step, image_size=config.data.image_size,
                        label_smoothing=config.optimizer.label_smoothing),
      out_shardings=(repl, repl), donate_argnums=(0, 1))
  eval_step = _eval_fn(config, setup)
  base_key = jax.device_put(jax.random.key(config.seed + 1), repl)
  writer = metrics.MetricWriter(workdir)
  m = jax.device_put(steps.zero_metrics(), repl)
  bar = tqdm(total=total, initial=start, desc="train", unit="step",
             disable=not config.progress_bar or jax.process_index() != 0)
  result = {}
  t0, step = time.perf_counter(), start
  while step < total:
    state, m = train_step(state, m, mesh_lib.shard_batch(next(it), setup.mesh), base_key)
    step += 1
    bar.update()
    if step % config.log_every_steps == 0 or step == total:
      summary = steps.summarize(m)
      dt = time.perf_counter() - t0
      row = {"epoch": step / steps_per_epoch, "loss": summary["loss"],
             "accuracy": summary["accuracy"], "lr": float(schedule(step - 1)),
             "examples_per_s": summary["num_examples"] / dt}
      writer.write("train", step, row)
      bar.set_postfix(loss=f"{row['loss']:.4f}", img_s=f"{row['examples_per_s']:.0f}")
      m = jax.device_put(steps.zero_metrics(), repl)
      t0 = time.perf_counter()
    if step % eval_every == 0 or step == total:
      result = run_eval(config, setup, state, eval_src, eval_step)
      writer.write("eval", step, {"epoch": step / steps_per_epoch, **result})
      bar.write(f"step {step}: eval {result}")
      t0 = time.perf_counter()
    if step % ckpt_every == 0 or step == total:
      checkpoint.save(mngr, step, state, it)
  bar.close()
  mngr.wait_until_finished()
  writer.close()
  if not result:  # resumed after the last step: evaluate what is there
    result = run_eval(config, setup, state, eval_src, eval_step)
  return result


def dry_run(config: ml_collections.ConfigDict) -> dict:
  """Everything ``train_and_evaluate`` checks before its first step, then one train step traced
  abstractly (``jax.eval_shape``: nothing is compiled or run). Returns the parameter count."""
  validate.check_static(config, jax.device_count())
  train_src, info = _load(config, config.data.train_split)
  setup = _setup(config, info)
  tx = optim.make_optimizer(config.optimizer, optim.make_schedule(config.optimizer, 1, 1))
  state = jax.eval_shape(lambda: state_lib.create(setup.model, tx, setup.input_shape, config.seed))
  shape = pipeline.example_shape(info, config.data)
  batch = {"inputs": jax.ShapeDtypeStruct((config.batch_size, *shape), jnp.float32),
           "label": jax.ShapeDtypeStruct((config.batch_size,), jnp.int32)}
  step = functools.partial(steps.train_step, image_size=config.data.image_size,
                           label_smoothing=config.optimizer.label_smoothing)
  jax.eval_shape(step, state, steps.zero_metrics(), batch, jax.random.key(0))
  return {"num_params": sum(x.size for x in jax.tree.leaves(state.params)),
          "train_examples": len(train_src)}


def evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Restores the latest checkpoint of ``workdir`` and evaluates on ``config.data.eval_split``."""
  validate.check_static(config, jax.device_count())
  eval_src, info = _load(config, config.data.eval_split)
  setup = _setup(config, info)
  mngr = checkpoint.manager(workdir, config.keep_checkpoints)
  step = mngr.latest_step()
  if step is None:
    raise FileNotFoundError(f"no checkpoint in {workdir!r}/checkpoints to evaluate")
  tx = optim.make_optimizer(config.optimizer, optim.make_schedule(config.optimizer, 1, 1))
  state = checkpoint.restore(mngr, step, _abstract_state(setup, tx, config.seed))
  return {"step": step, **run_eval(config, setup, state, eval_src, _eval_fn(config, setup))}

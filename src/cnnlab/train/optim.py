"""Optimizer and learning-rate schedule from ``config.optimizer`` (optax).

Schedules are in steps; ``warmup_epochs`` ramps linearly from 0, then ``constant`` / ``cosine``
(to 0 at the last step) / ``step`` (times ``decay_factor`` at each of ``decay_epochs``).
``weight_decay`` is decoupled for ``adamw`` and coupled (added to the gradient, as torch's
``weight_decay``) for the others, on every parameter. ``grad_clip_norm`` > 0 clips the global norm.
``adadelta`` takes ``rho`` and ``eps``. ``max_norm`` > 0 (:func:`with_max_norm`, chained last by
the loop): Kim 2014's bound on each output unit's weights of the output layer ``fc``.
"""

from __future__ import annotations

import optax

from cnnlab.models import kim_cnn
from cnnlab.train.errors import ConfigError

MAX_NORM_LAYERS = ("fc",)


def make_schedule(opt, total_steps: int, steps_per_epoch: int) -> optax.Schedule:
  lr = opt.learning_rate
  warmup = int(round(opt.warmup_epochs * steps_per_epoch))
  if opt.schedule == "constant":
    main = optax.constant_schedule(lr)
  elif opt.schedule == "cosine":
    main = optax.cosine_decay_schedule(lr, max(total_steps - warmup, 1))
  else:  # step
    main = optax.piecewise_constant_schedule(
        lr, {int(round(e * steps_per_epoch)) - warmup: opt.decay_factor
             for e in opt.decay_epochs})
  if not warmup:
    return main
  return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), main], [warmup])


def make_optimizer(opt, schedule: optax.Schedule) -> optax.GradientTransformation:
  if opt.name == "adamw":
    core = optax.adamw(schedule, b1=opt.b1, b2=opt.b2, weight_decay=opt.weight_decay)
  else:
    core = {
        "sgd": lambda: optax.sgd(schedule),
        "momentum": lambda: optax.sgd(schedule, momentum=opt.momentum),
        "nesterov": lambda: optax.sgd(schedule, momentum=opt.momentum, nesterov=True),
        "adam": lambda: optax.adam(schedule, b1=opt.b1, b2=opt.b2),
        "adadelta": lambda: optax.adadelta(schedule, rho=opt.rho, eps=opt.eps),
    }[opt.name]()
    if opt.weight_decay:
      core = optax.chain(optax.add_decayed_weights(opt.weight_decay), core)
  if opt.grad_clip_norm:
    core = optax.chain(optax.clip_by_global_norm(opt.grad_clip_norm), core)
  return core


def with_max_norm(opt, tx: optax.GradientTransformation) -> optax.GradientTransformation:
  """``tx`` followed by the projection of ``MAX_NORM_LAYERS``' kernel columns onto the l2 ball of
  radius ``opt.max_norm`` (``tx`` itself if it is 0 or unset, e.g. an older run's config)."""
  radius = getattr(opt, "max_norm", 0.0)
  if not radius:
    return tx
  return optax.chain(tx, kim_cnn.max_norm_projection(radius, MAX_NORM_LAYERS))


def check_max_norm(config, params) -> None:
  """``optimizer.max_norm`` needs a model whose parameters hold the layers it bounds."""
  missing = [n for n in MAX_NORM_LAYERS if "kernel" not in params.get(n, {})]
  if config.optimizer.get("max_norm", 0.0) and missing:
    raise ConfigError(f"config.optimizer.max_norm={config.optimizer.max_norm!r} is invalid: "
                      f"model {config.model.name!r} has no dense output layer {missing[0]!r} "
                      f"(allowed: 0 = off, or a model with one; its top-level modules: "
                      f"{sorted(params)})")

"""Optimizer and learning-rate schedule from ``config.optimizer`` (optax).

Schedules are in steps; ``warmup_epochs`` ramps linearly from 0, then ``constant`` / ``cosine``
(to 0 at the last step) / ``step`` (times ``decay_factor`` at each of ``decay_epochs``).
``weight_decay`` is decoupled for ``adamw`` and coupled (added to the gradient, as torch's
``weight_decay``) for the others, on every parameter. ``grad_clip_norm`` > 0 clips the global norm.
"""

from __future__ import annotations

import optax


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
    }[opt.name]()
    if opt.weight_decay:
      core = optax.chain(optax.add_decayed_weights(opt.weight_decay), core)
  if opt.grad_clip_norm:
    core = optax.chain(optax.clip_by_global_norm(opt.grad_clip_norm), core)
  return core

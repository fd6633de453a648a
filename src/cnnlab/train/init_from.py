"""Initialise a run from another workdir or converted weights (``config.init_from``;
docs/transfer.md, "Init from another run").

Sources: a training workdir (its checkpoint at ``init_from.step``: ``latest``, ``best`` or a
step number; the arrays read are checked against the step's sha256 digest) or the output folder
of ``scripts/convert_weights.py`` (``variables`` + ``weights.json``). The variables loaded are
those of the new model's ``params`` and ``batch_stats`` that ``init_from.include`` matches (all
if empty) and ``init_from.skip`` does not (``transfer.cut_after``'s new head is always skipped);
each must exist in the source with the same shape. :func:`prepare` checks that from the source's
metadata alone and raises one :class:`ConfigError` listing every mismatch; :func:`apply` then
reads just those arrays (Orbax partial restore) into the fresh train state and records the
source in ``WORKDIR/init_from.json``. Skipped variables keep their fresh initialisation; the
optimizer state starts fresh. The loop does this only when the run starts from step 0 (a
resumed run restores its own checkpoint).
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import re

import jax
from flax import traverse_util

from cnnlab.train import checkpoint, cut, patterns, workdir as workdir_lib
from cnnlab.train.errors import ConfigError

RECORD = "init_from.json"  # beside config.json in the new run's workdir
WEIGHTS, WEIGHTS_RECORD = "variables", "weights.json"  # scripts/convert_weights.py's output
COLLECTIONS = ("params", "batch_stats")


@dataclasses.dataclass(frozen=True)
class Plan:
  """What :func:`apply` loads: from ``item`` (an Orbax checkpoint folder holding ``params`` and
  ``batch_stats``, a train state's or converted weights), the ``load`` variables
  (``(collection, path)`` pairs), checked against ``digest`` (a workdir step's; None for
  weights); ``record`` is written to ``init_from.json``."""
  item: pathlib.Path
  digest: pathlib.Path | None
  load: tuple
  record: dict


def _flat(tree) -> dict:
  return traverse_util.flatten_dict(tree) if tree else {}


def _field(config, name, default=""):
  return (config.get("init_from") or {}).get(name, default)


def _source(config):
  """``(item folder, digest folder or None, record)`` of ``config.init_from.workdir``."""
  src = pathlib.Path(_field(config, "workdir")).absolute()
  field = f"config.init_from.workdir={str(src)!r}"
  if (src / WEIGHTS).is_dir() and (src / WEIGHTS_RECORD).is_file():
    try:
      weights = json.loads((src / WEIGHTS_RECORD).read_text())
    except ValueError as e:
      raise ConfigError(f"{field} is invalid: {WEIGHTS_RECORD} is unreadable ({e})") from None
    return src / WEIGHTS, None, {"kind": "weights", "workdir": str(src), "weights": weights}
  if not workdir_lib.steps(src):
    raise ConfigError(f"{field} is invalid: it holds neither checkpoints (a training workdir) "
                      f"nor {WEIGHTS}/ + {WEIGHTS_RECORD} (scripts/convert_weights.py) (allowed: "
                      "one of those, or '' for no init)")
  step_value = _field(config, "step", "latest")
  try:
    step = workdir_lib.resolve_step(src, step_value)
  except ConfigError as e:
    raise ConfigError(f"config.init_from.{e}") from None
  folder = workdir_lib.checkpoints_dir(src) / str(step)
  return folder / "state", folder / "digest", {
      "kind": "workdir", "workdir": str(src), "step": step,
      "config": workdir_lib.read_config(src).to_dict()}


def _metadata(item: pathlib.Path) -> dict:
  import orbax.checkpoint as ocp  # noqa: PLC0415
  return ocp.StandardCheckpointer().metadata(item).item_metadata.tree


def prepare(config, abstract_state) -> Plan | None:
  """The variables of ``abstract_state`` (the new run's, abstract) to load from
  ``config.init_from``; None when it is off. Reads metadata only; raises :class:`ConfigError`."""
  if not _field(config, "workdir"):
    return None
  include = patterns.parse(_field(config, "include"))
  skip = patterns.parse(_field(config, "skip"))
  item, digest, record = _source(config)
  meta = _metadata(item)
  targets = [(c, p, leaf) for c in COLLECTIONS
             for p, leaf in _flat(getattr(abstract_state, c)).items()]
  paths = [(c, p) for c, p, _ in targets]
  for field, globs in (("include", include), ("skip", skip)):
    bad = patterns.unused(globs, paths)
    if bad:
      raise ConfigError(f"config.init_from.{field}={_field(config, field)!r} is invalid: "
                        f"{bad[0]!r} matches no variable of the new model (allowed: globs over "
                        f"its paths, whose top-level modules are {patterns.top_level(paths)})")
  new_head = bool((config.get("transfer") or {}).get("cut_after"))
  source = {c: _flat(meta.get(c)) for c in COLLECTIONS}
  load, skipped, missing, wrong = [], [], [], []
  for c, p, leaf in targets:
    name = f"{c}/{'/'.join(p)}"
    if ((include and not patterns.matches(include, p, c)) or patterns.matches(skip, p, c)
        or (new_head and p[0] == cut.HEAD)):
      skipped.append(name)
    elif p not in source[c]:
      missing.append(name)
    elif tuple(source[c][p].shape) != tuple(leaf.shape):
      wrong.append(f"{name} {tuple(leaf.shape)} <- {tuple(source[c][p].shape)}")
    else:
      load.append((c, p))
  if missing or wrong:
    listed = "; ".join(f"{len(v)} {k}: [{', '.join(v[:8])}{', ...' if len(v) > 8 else ''}]"
                       for k, v in (("shape mismatches (new <- source)", wrong),
                                    ("missing in the source", missing)) if v)
    raise ConfigError(f"config.init_from.workdir={record['workdir']!r} does not fit the new "
                      f"model: {listed} (allowed: name them in config.init_from.skip, e.g. "
                      f"{_suggest(missing + wrong)!r}, or init from a matching run)")
  if not load:
    raise ConfigError(f"config.init_from.skip={_field(config, 'skip')!r} is invalid: it leaves "
                      "nothing to load from config.init_from.workdir (allowed: fewer globs)")
  record = {**record, "include": _field(config, "include"), "skip": _field(config, "skip"),
            "loaded": [f"{c}/{'/'.join(p)}" for c, p in load], "skipped": skipped}
  return Plan(item, digest, tuple(load), record)


def _suggest(names: list[str]) -> str:
  return "|".join(dict.fromkeys(n.split()[0].split("/")[1] for n in names))


def apply(plan: Plan | None, state, workdir):
  """``state`` (the fresh train state) with ``plan``'s variables read from the source (each
  array checked against the source step's digest), recorded in ``WORKDIR/init_from.json``."""
  if plan is None:
    return state
  import orbax.checkpoint as ocp  # noqa: PLC0415
  current = {c: _flat(getattr(state, c)) for c in COLLECTIONS}
  target = {}
  for c, p in plan.load:
    x = current[c][p]
    target[(c, *p)] = jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding)
  target = traverse_util.unflatten_dict(target)
  with ocp.PyTreeCheckpointer() as ckptr:
    loaded = ckptr.restore(plan.item, args=ocp.args.PyTreeRestore(
        item=target, restore_args=ocp.checkpoint_utils.construct_restore_args(target),
        partial_restore=True))
  if plan.digest is not None:
    _verify(plan, loaded)
  flat = traverse_util.flatten_dict(loaded)
  for c, p in plan.load:
    current[c][p] = flat[(c, *p)]
  state = state.replace(**{c: traverse_util.unflatten_dict(current[c]) for c in COLLECTIONS
                           if current[c]})
  if jax.process_index() == 0:
    pathlib.Path(workdir, RECORD).write_text(json.dumps(plan.record, indent=2) + "\n")
  return state


def _verify(plan: Plan, loaded) -> None:
  """The loaded arrays' sha256 against the digest saved with the source step (its keys are
  train-state paths: ``.params['conv0']['kernel']``)."""
  import orbax.checkpoint as ocp  # noqa: PLC0415
  with ocp.Checkpointer(ocp.JsonCheckpointHandler()) as ckptr:
    saved = ckptr.restore(plan.digest)
  now = {re.sub(r"^\['(\w+)'\]", r".\1", k): v for k, v in checkpoint.digest(loaded).items()}
  bad = sorted(k for k, v in now.items() if saved.get(k) != v)
  if bad:
    raise ConfigError(
        f"config.init_from.step={plan.record['step']} is invalid: in "
        f"{plan.item.parent}, array(s) {', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''} "
        "differ from the digest recorded at save (allowed: another step of that workdir)")

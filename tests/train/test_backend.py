"""``config.xla_cpu_options``: parsed and checked with one clear line, applied to the compiled
HLO (the YNN conv fusion of jaxlib 0.10.2's CPU backend is there by default and gone with the
``no_ynn_conv`` preset), same results, used by the loop's train and eval steps only, and free to
change on resumption."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from absl import flags
from jax import lax

from cnnlab import train
from cnnlab.train import backend, workdir as workdir_lib

pytestmark = pytest.mark.skipif(jax.default_backend() != "cpu", reason="XLA CPU options")

YNN_TYPES = "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_DOT,LIBRARY_FUSION_TYPE_REDUCE"


@pytest.mark.parametrize("value,expected", [
    ("", {}),
    ("no_ynn_conv", {"xla_cpu_experimental_ynn_fusion_type": YNN_TYPES}),
    (f"--xla_cpu_experimental_ynn_fusion_type={YNN_TYPES} xla_cpu_enable_fast_math=true",
     {"xla_cpu_experimental_ynn_fusion_type": YNN_TYPES, "xla_cpu_enable_fast_math": True}),
])
def test_parse(value, expected):
  assert backend.parse(value) == expected
  assert backend.compiler_options({"xla_cpu_options": value}) == (expected or None)


def test_nothing_applied_off_cpu(monkeypatch):
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  assert backend.compiler_options({"xla_cpu_options": "no_ynn_conv"}) is None


@pytest.mark.parametrize("value,message", [
    ("no_ynn", r"config.xla_cpu_options='no_ynn' is invalid: 'no_ynn' is not a preset or a "
               r"name=value pair \(allowed: '', a preset \['no_ynn_conv'\]"),
    ("xla_cpu_bogus=1", r"config.xla_cpu_options.xla_cpu_bogus='1' is invalid: No such compile "
                        r"option: 'xla_cpu_bogus'"),
    ("xla_cpu_experimental_ynn_fusion_type=DOT",
     r"config.xla_cpu_options.xla_cpu_experimental_ynn_fusion_type='DOT' is invalid: .*'DOT' is "
     r"not a valid enum value"),
    ("xla_cpu_enable_fast_math=yes",
     r"config.xla_cpu_options.xla_cpu_enable_fast_math='yes' is invalid: .*not a valid bool"),
], ids=["malformed", "unknown_name", "bad_enum", "bad_bool"])
def test_bad_option_is_one_line_naming_it(digits_config, value, message):
  digits_config.xla_cpu_options = value
  with pytest.raises(train.ConfigError, match=message) as err:
    backend.check(digits_config)
  assert "\n" not in str(err.value)


def test_flag_validator_raises_the_same_line_as_a_validation_error():
  """The benchmarks' ``--xla_cpu_options`` (absl validator): one line naming the option."""
  assert backend.validate_flag("no_ynn_conv") and backend.validate_flag("")
  with pytest.raises(flags.ValidationError, match=r"xla_cpu_options.xla_cpu_bogus='1' is "
                                                  r"invalid: No such compile option"):
    backend.validate_flag("xla_cpu_bogus=1")


def test_jit_traces_auto_with_its_options(tmp_path, monkeypatch):
  """``backend.jit`` traces ``impl='auto'`` under the config's options: a cache entry timed with
  ``no_ynn_conv`` picks the impl of a step compiled with it, and not of one compiled without."""
  from cnnlab import ops  # noqa: PLC0415
  from cnnlab.ops import conv_auto  # noqa: PLC0415
  from cnnlab.ops.conv_case import make_case  # noqa: PLC0415

  x, w = _inputs()
  case = make_case(x.shape, w.shape, x.dtype, w.dtype, padding="SAME")
  with conv_auto.compiled_with(backend.NO_YNN_CONV):
    key = conv_auto.case_key(case)
  monkeypatch.setenv(conv_auto.CACHE_ENV, str(tmp_path / "cache.json"))
  conv_auto.merge_cache({key: {"fwd_bwd_s": {"lax": 2.0, "fft": 1.0}}})
  conv = lambda x, w: ops.conv(x, w, padding="SAME", impl="auto")  # noqa: E731
  for value, fft in (("no_ynn_conv", True), ("", False)):
    hlo = backend.jit(conv, {"xla_cpu_options": value}).lower(x, w).as_text()
    assert ("fft" in hlo) == fft and ("convolution" in hlo) != fft, value


def test_loop_rejects_a_bad_option_before_writing(digits_config, tmp_path):
  digits_config.xla_cpu_options = "xla_cpu_bogus=1"
  with pytest.raises(train.ConfigError, match="config.xla_cpu_options.xla_cpu_bogus='1'"):
    train.train_and_evaluate(digits_config, str(tmp_path))
  assert not workdir_lib.config_path(tmp_path).exists()


def test_preset_option_this_jaxlib_rejects_is_dropped(monkeypatch, digits_config, caplog):
  """A preset names fields of one jaxlib's XLA: on a jaxlib without one, the run goes on without
  it (one warning), while the same option written out stops the run."""
  monkeypatch.setitem(backend.PRESETS, "later_jaxlib",
                      {**backend.NO_YNN_CONV, "xla_cpu_option_of_a_later_jaxlib": True})
  digits_config.xla_cpu_options = "later_jaxlib"
  backend.check(digits_config)
  assert backend.compiler_options(digits_config) == backend.NO_YNN_CONV
  assert "this jaxlib rejects xla_cpu_option_of_a_later_jaxlib" in caplog.text
  digits_config.xla_cpu_options = "xla_cpu_option_of_a_later_jaxlib=true"
  with pytest.raises(train.ConfigError, match="xla_cpu_options.xla_cpu_option_of_a_later_jaxlib"):
    backend.check(digits_config)


def _conv_loss(x, w):
  y = lax.conv_general_dilated(x, w, (1, 1), ((1, 1), (1, 1)),
                               dimension_numbers=("NHWC", "HWIO", "NHWC"))
  return jnp.sum(y ** 2)


def _ynn_fusions(hlo: str) -> tuple[int, int]:
  """(YNN fusions that hold a convolution, all YNN fusions) of compiled HLO text."""
  bodies = dict(re.findall(r"^%(\S+) .*?\{\n(.*?)\n\}", hlo, re.M | re.S))
  called = re.findall(r"kind=kCustom, calls=%(\S+?),.*\"kind\":\"__ynn_fusion\"", hlo)
  return sum("convolution(" in bodies[c] for c in called), len(called)


def _inputs():
  rng = np.random.default_rng(0)  # C=32: big enough for XLA to pick YNN (C=16 is not)
  return (rng.standard_normal((2, 8, 8, 32), np.float32),
          rng.standard_normal((3, 3, 32, 32), np.float32) / 17)


def test_preset_moves_convs_out_of_ynn_same_results():
  """Default: the forward conv and both gradient convs are YNN fusions; ``no_ynn_conv``: none
  is (XLA's own convolutions), while the loss's reduction stays in YNN. Loss and gradients
  equal torch's either way."""
  x, w = _inputs()
  results = {}
  for value, want in (("", (3, 4)), ("no_ynn_conv", (0, 1))):
    step = jax.jit(jax.value_and_grad(_conv_loss, argnums=(0, 1)),
                   compiler_options=backend.compiler_options({"xla_cpu_options": value}))
    hlo = step.lower(x, w).compile().as_text()
    assert _ynn_fusions(hlo) == want, value
    assert hlo.count("convolution(") == 3
    results[value] = step(x, w)
  xt, wt = (torch.from_numpy(a).requires_grad_() for a in (x.transpose(0, 3, 1, 2),
                                                           w.transpose(3, 2, 0, 1)))
  loss = (torch.nn.functional.conv2d(xt, wt, padding=1) ** 2).sum()
  loss.backward()
  ref = (loss.item(), xt.grad.numpy().transpose(0, 2, 3, 1), wt.grad.numpy().transpose(2, 3, 1, 0))
  for value, (loss_value, (dx, dw)) in results.items():
    np.testing.assert_allclose(loss_value, ref[0], rtol=1e-5, err_msg=value)
    np.testing.assert_allclose(dx, ref[1], rtol=1e-4, atol=1e-4, err_msg=value)
    np.testing.assert_allclose(dw, ref[2], rtol=1e-4, atol=1e-4, err_msg=value)


def test_loop_compiles_train_and_eval_steps_with_them(digits_config, tmp_path):
  """XLA dumps each module it compiles with ``xla_dump_to`` and its debug options: the train
  and eval steps carry the options; nothing else of the loop (state init, metrics) is compiled
  with them (the remaining module is the check's probe)."""
  dump = tmp_path / "dump"
  digits_config.xla_cpu_options = f"xla_cpu_experimental_ynn_fusion_type={YNN_TYPES} " \
                                  f"xla_dump_to={dump}"
  train.train_and_evaluate(digits_config, str(tmp_path / "run"))
  modules = {p.name.split(".")[1] for p in dump.iterdir()}
  assert modules == {"jit_train_step", "jit_eval_step", "jit__lambda"}
  for name in ("jit_train_step", "jit_eval_step"):
    (options,) = dump.glob(f"*.{name}.debug_options")
    ynn = re.findall(r"^xla_cpu_experimental_ynn_fusion_type: (\w+)$", options.read_text(), re.M)
    assert sorted(ynn) == sorted(YNN_TYPES.split(",")), name


def test_options_may_change_on_resumption(digits_config, tmp_path):
  workdir_lib.config_path(tmp_path).write_text(digits_config.to_json())
  digits_config.xla_cpu_options = "no_ynn_conv"
  assert workdir_lib.config_changes(tmp_path, digits_config)[2] == []
  digits_config.optimizer.learning_rate *= 2
  assert workdir_lib.config_changes(tmp_path, digits_config)[2] == ["optimizer.learning_rate"]

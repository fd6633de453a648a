"""Forecasting windows of real series shipped by ``statsmodels`` (``statsmodels.datasets``).

- ``co2``: Mauna Loa atmospheric CO2 (ppm), weekly 1958-03 to 2001-12 (59 weeks missing),
  here as monthly means (``resample('MS').mean()``, gaps linearly interpolated): 526 months,
  seasonal period 12.
- ``sunspots``: yearly mean sunspot numbers 1700-2008: 309 years, period about 11.
Example = one forecast origin ``o`` (the first forecast step): ``history`` float32
``(history, 1)`` = ``series[o - history:o]``, ``target`` float32 ``(horizon,)`` =
``series[o:o + horizon]``, ``origin`` int = ``o``; raw units (regression, ``num_classes`` 0).
Rolling-origin evaluation on the last ``test_size`` steps: ``test`` = every origin ``o`` with
``N - test_size <= o <= N - horizon`` (its history may reach back into the training period),
``train`` = every window that ends before the test period (``o + horizon <= N - test_size``),
``all`` = every window, each in origin order. :func:`seasonal_naive` is the baseline.
"""

from __future__ import annotations

import numpy as np

from cnnlab.data import views

PERIOD = {"co2": 12, "sunspots": 11}
DATASET_OPTIONS = {
    "co2": {"history": 48, "horizon": 12, "test_size": 120},
    "sunspots": {"history": 44, "horizon": 11, "test_size": 66},
}
_SPLITS = ("train", "test", "all")


def series(name: str) -> np.ndarray:
  """The float32 series ``name`` (see module doc), oldest first."""
  from statsmodels import datasets  # noqa: PLC0415 - imports pandas; only when data is read
  if name == "co2":
    return datasets.co2.load().data["co2"].resample("MS").mean().interpolate().to_numpy(
        np.float32)
  return datasets.sunspots.load().data["SUNACTIVITY"].to_numpy(np.float32)


def seasonal_naive(history_BxH, horizon: int, period: int) -> np.ndarray:
  """``(B, horizon)`` forecasts repeating the last ``period`` observed values of each history
  (``y[o + h] = y[o + h - period * (h // period + 1)]``)."""
  h = np.arange(horizon)
  return np.asarray(history_BxH)[:, h % period - period]


def windows(y: np.ndarray, origins: np.ndarray, history: int, horizon: int) -> dict:
  """``{'history': (N, history, 1), 'target': (N, horizon), 'origin': (N,)}`` of series ``y``."""
  past = origins[:, None] + np.arange(-history, 0)
  future = origins[:, None] + np.arange(horizon)
  return {"history": y[past][..., None], "target": y[future],
          "origin": origins.astype(np.int32)}


def load(name, split, *, data_dir=None, manual_dir=None, history, horizon, test_size):
  """``(source, DataInfo)`` of ``split`` of series ``name`` (see module doc)."""
  from cnnlab.data import sources  # noqa: PLC0415 - sources imports this module lazily
  del data_dir  # nothing is prepared: the windows are views of a few hundred values.
  DataError = sources.DataError  # noqa: N806
  if manual_dir is not None:
    raise DataError("manual_dir", f"dataset {name!r} comes with statsmodels and takes no "
                    "manual_dir (allowed: '')")
  if split not in _SPLITS:
    raise DataError("split", f"dataset {name!r} has splits {list(_SPLITS)}; got {split!r}")
  y = series(name)
  n = len(y)
  for k, v in (("history", history), ("horizon", horizon), ("test_size", test_size)):
    if not isinstance(v, int) or v < 1:
      raise DataError(k, f"{k}={v!r} is invalid (allowed: an int >= 1)")
  if test_size < horizon or n - test_size - horizon < history:
    raise DataError("test_size", f"test_size={test_size} is invalid: with history={history} "
                    f"and horizon={horizon} the {n}-step series needs horizon <= test_size <= "
                    f"{n - history - horizon}")
  start = n - test_size
  origins = {"train": np.arange(history, start - horizon + 1),
             "test": np.arange(start, n - horizon + 1),
             "all": np.arange(history, n - horizon + 1)}
  info = sources.DataInfo("history", "target", (history, 1), "float32", 0,
                          {k: len(v) for k, v in origins.items()})
  return views.Arrays(windows(y, origins[split], history, horizon)), info

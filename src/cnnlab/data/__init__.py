"""Datasets as random-access sources for Grain: ``load(name, split) -> (source, DataInfo)``.

See ``cnnlab.data.sources`` for the interface and ``cnnlab.data.builders`` for the TFDS
builders (no TensorFlow needed for the builtin datasets).
"""

from cnnlab.data.sources import BUILTIN, DataError, DataInfo, data_info, load, options

__all__ = ["BUILTIN", "DataError", "DataInfo", "data_info", "load", "options"]

"""cnnlab: convolutional networks in JAX/Flax.

Layers of the package (imports point one way): ``experiments`` -> ``train`` -> ``models`` ->
``nn`` -> ``ops``; ``data`` feeds ``train``; ``procs`` (child processes that die with their
parent) serves ``data`` and ``sweep``. Importing the package or ``cnnlab.train`` loads no JAX.
"""

__version__ = "0.1.0"

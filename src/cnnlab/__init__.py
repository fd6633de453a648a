"""cnnlab: convolutional networks in JAX/Flax.

Layers of the package (imports point one way): ``train`` -> ``models`` -> ``nn`` -> ``ops``;
``data`` feeds ``train``.
"""

__version__ = "0.1.0"

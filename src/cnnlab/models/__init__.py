"""Architectures and their registry. Every model: ``model.apply(variables, x, train=...)``.

Each family module registers its models when imported; import them all here.
"""

from cnnlab.models import lenet, mlp  # noqa: F401  (registers the models)
from cnnlab.models.features import extract_features
from cnnlab.models.registry import ModelSpec, create, get_spec, list_models, register

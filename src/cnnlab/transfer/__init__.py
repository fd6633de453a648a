"""Weights from elsewhere (docs/transfer.md): ``from_torchvision`` converts a torchvision
``state_dict``; ``weights`` holds the official files' URLs and preprocessing."""

from cnnlab.transfer.torchvision import TORCHVISION_MODELS, from_torchvision
from cnnlab.transfer.weights import (WeightSet, check_sha256_prefix, download, preprocessing,
                                     sha256_of, weight_set)

__all__ = ["TORCHVISION_MODELS", "WeightSet", "check_sha256_prefix", "download",
           "from_torchvision", "preprocessing", "sha256_of", "weight_set"]

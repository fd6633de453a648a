"""Architectures and their registry. Every model: ``model.apply(variables, x, train=...)``.

Each family module registers its models when imported; import them all here.
"""

from cnnlab.models import lenet, mlp, small_cnn  # noqa: F401  (registers the models)
from cnnlab.models import efficientnet, mobilenet  # noqa: F401
from cnnlab.models import resnet, resnet_cifar  # noqa: F401
from cnnlab.models import alexnet, allcnn, densenet, squeezenet, vgg  # noqa: F401
from cnnlab.models import googlenet, inception_v3, shufflenet  # noqa: F401
from cnnlab.models import cnn1d  # noqa: F401
from cnnlab.models import audio_cnn, forecast, kim_cnn, rnn, tcn, wavenet  # noqa: F401
from cnnlab.models import video  # noqa: F401
from cnnlab.models import conv_vae, denoise_ae  # noqa: F401
from cnnlab.models import dilated_context, fcn, unet  # noqa: F401
from cnnlab.models.features import extract_features
from cnnlab.models.registry import ModelSpec, create, get_spec, list_models, register

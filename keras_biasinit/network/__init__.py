"""The whole network from data: every kernel's scale, then the output bias.

`adapt_kernel_scales(model, data)` walks a functional model from its input
to its outputs once, on cached inputs, and gives every kernel a gain so that
its layer's output has a chosen second moment on the data (LSUV, Mishkin &
Matas 2016), handling residual sums, normalised layers and output layers;
`adapt_model(model, data)` then sets the output bias with
`adapt_output_bias`. The gains are kept in each layer's kernel initializer
(`keras_biasinit.initializers.Rescaled`), so saved models carry them.
"""

from keras_biasinit.network.adapt_model import AdaptedModel
from keras_biasinit.network.adapt_model import adapt_model
from keras_biasinit.network.kernel_scales import KernelScales
from keras_biasinit.network.kernel_scales import adapt_kernel_scales

__all__ = ["AdaptedModel", "KernelScales", "adapt_kernel_scales", "adapt_model"]

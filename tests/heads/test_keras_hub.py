"""Real KerasHub tasks, built from tiny backbones (no presets, no download).

A task is a functional model whose backbone is a nested model; its head
(`predictions` / `logits`, a `Dense`) follows a pooler and a `Dropout`.
After `load_model` a task is rebuilt from its constructor arguments: the
head's `bias_initializer` is `Zeros` again, and verify computes the expected
loss from the data with the loss table.
"""

import keras
import numpy as np
import pytest

import keras_biasinit as kbi

pytestmark = pytest.mark.keras
keras_hub = pytest.importorskip("keras_hub")


def _entropy(ids, k):
    f = np.bincount(ids, minlength=k) / ids.size
    return float(-np.sum(f[f > 0] * np.log(f[f > 0])))


def _zero_kernel_loss(model, layer, x, y):
    saved = keras.ops.convert_to_numpy(layer.kernel)
    layer.kernel.assign(np.zeros_like(saved))
    try:
        return model.evaluate(x, y, verbose=0, batch_size=len(y),
                              return_dict=True)["loss"]
    finally:
        layer.kernel.assign(saved)


@pytest.fixture(scope="module")
def image_task():
    rng = np.random.default_rng(0)
    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64], stackwise_num_blocks=[1],
        stackwise_num_strides=[1], block_type="basic_block",
        use_pre_activation=False, image_shape=(8, 8, 3))
    task = keras_hub.models.ResNetImageClassifier(backbone=backbone, num_classes=3)
    task.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = rng.random((32, 8, 8, 3)).astype("float32")
    y = rng.choice(3, size=32, p=[0.6, 0.3, 0.1])
    return task, x, y


def test_resnet_image_classifier(image_task):
    task, x, y = image_task
    inits = kbi.adapt_output_bias(task, (x, y), verbose=0)
    assert list(inits) == ["predictions"]
    head = task.get_layer("predictions")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(head.bias),
                               np.log(np.bincount(y, minlength=3) / 32), rtol=1e-5)
    assert inits["predictions"].expected_loss == pytest.approx(_entropy(y, 3),
                                                               rel=1e-6)
    assert _zero_kernel_loss(task, head, x, y) == pytest.approx(_entropy(y, 3),
                                                                rel=1e-4)
    # Rebuilt from its config, as `load_model` does, with the weights kept:
    # the head's bias_initializer is Zeros again.
    loaded = type(task).from_config(task.get_config())
    loaded.set_weights(task.get_weights())
    loaded.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    assert type(loaded.get_layer("predictions").bias_initializer).__name__ == "Zeros"
    check = kbi.verify_loss_at_init(loaded, (x, y))
    assert check.expected == pytest.approx(_entropy(y, 3), rel=1e-6)
    assert "does not know its expected loss" in check.message


def test_bert_text_classifier_without_preprocessor():
    rng = np.random.default_rng(1)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=20, num_layers=1, num_heads=1, hidden_dim=4,
        intermediate_dim=8, max_sequence_length=8)
    task = keras_hub.models.BertTextClassifier(backbone=backbone, num_classes=2,
                                               preprocessor=None)
    task.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    tokens = rng.integers(1, 20, size=(16, 8))
    x = {"token_ids": tokens, "segment_ids": np.zeros_like(tokens),
         "padding_mask": np.ones_like(tokens)}
    y = (np.arange(16) % 4 == 0).astype("int32")
    inits = kbi.adapt_output_bias(task, (x, y), verbose=0)
    assert inits["logits"].expected_loss == pytest.approx(_entropy(y, 2), rel=1e-6)
    head = task.get_layer("logits")
    assert _zero_kernel_loss(task, head, x, y) == pytest.approx(_entropy(y, 2),
                                                                rel=1e-4)
    check = kbi.verify_loss_at_init(task, (x, y))
    assert check.zero_kernel_loss == pytest.approx(_entropy(y, 2), rel=1e-4)

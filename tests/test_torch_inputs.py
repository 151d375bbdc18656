"""PyTorch inputs: a `DataLoader` and torch tensors, read as Keras's `fit` reads them.

Runs wherever torch is installed (`.venv-notf`: `make test` under JAX and torch),
under any Keras backend, since Keras's `fit` takes a `DataLoader` under any.
"""

import keras
import numpy as np
import pytest

import keras_biasinit as kbi

pytestmark = pytest.mark.keras
torch = pytest.importorskip("torch")
TensorDataset = torch.utils.data.TensorDataset
DataLoader = torch.utils.data.DataLoader

N = 90
_I = np.arange(N)
X = np.stack([_I % 5, _I % 3], axis=1).astype(np.float32)
IDS = (_I * _I) % 7 % 3  # classes 0, 1, 2 with counts 39, 38, 13
Y = ((_I * 37) % 41).astype(np.float32)
W = (1 + _I % 4).astype(np.float32)


def _loader(*arrays, batch_size=16):
    return DataLoader(TensorDataset(*(torch.as_tensor(a) for a in arrays)),
                      batch_size=batch_size)


def test_a_data_loader_of_x_y_gives_the_priors():
    prior = kbi.ClassPriorBias.from_dataset(_loader(X, IDS), verbose=0)
    freq = np.bincount(IDS, minlength=3) / N
    np.testing.assert_allclose(prior.bias, np.log(freq), rtol=1e-12)


def _weighted_median(y, w):
    """The first value whose cumulative weight reaches half the total (the
    midpoint with the next value where it reaches it exactly)."""
    values, inverse = np.unique(y, return_inverse=True)
    cumulative = np.cumsum(np.bincount(inverse, weights=w))
    half = cumulative[-1] / 2
    k = int(np.searchsorted(cumulative, half))
    return values[k] if cumulative[k] > half else (values[k] + values[k + 1]) / 2


def test_a_data_loader_of_x_y_w_is_weighted_and_read_again_for_exact_passes():
    loader = _loader(X, Y, W)
    mean = kbi.MeanBias.from_dataset(loader, verbose=0)
    reference = np.average(Y.astype(np.float64), weights=W)
    np.testing.assert_allclose(mean.bias, [reference], rtol=1e-12)
    # A budget this small takes several passes over the loader.
    median = kbi.MedianBias.from_dataset(loader, memory_budget=32 * 2**10,
                                         verbose=0)
    assert median.bias.tolist() == [_weighted_median(Y, W)]


def test_an_iterable_dataset_loader_without_a_length():
    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter(zip(torch.as_tensor(X), torch.as_tensor(Y)))

    loader = DataLoader(Stream(), batch_size=32)
    assert kbi.MedianBias.from_dataset(loader, verbose=0).bias.tolist() == [
        float(np.median(Y))]


def test_tensors_that_require_grad_are_read():
    y = torch.as_tensor(Y).reshape(-1, 1).requires_grad_(True)
    init = kbi.MedianBias.from_dataset((torch.as_tensor(X), y), verbose=0)
    assert init.bias.tolist() == [float(np.median(Y))]


def test_adapt_and_verify_on_a_data_loader():
    model = keras.Sequential([
        keras.Input((2,)),
        keras.layers.Dense(3, activation="softmax", kernel_initializer="zeros"),
    ])
    model.compile(loss="sparse_categorical_crossentropy")
    loader = _loader(X, IDS.astype(np.int64), batch_size=30)
    inits = kbi.adapt_output_bias(model, loader, verbose=0)
    freq = np.bincount(IDS, minlength=3) / N
    entropy = -(freq * np.log(freq)).sum()
    assert inits[model.layers[-1].name].expected_loss == pytest.approx(entropy)
    check = kbi.verify_loss_at_init(model, loader)
    assert check.ok and check.measured == pytest.approx(entropy, rel=1e-5)

"""PyTorch inputs, read the way Keras's `fit` reads them.

- A `torch.utils.data.DataLoader`: PyTorch's default collate turns `(x, y)` or
  `(x, y, sample_weight)` samples into a list `[x, y]` of batched tensors;
  Keras's `fit` takes those lists as `(x, y)` tuples, and so do the readers
  here (`loader_elements`).
- A `torch.Tensor`, also one in GPU memory or one that requires grad: detached
  and copied to the host before NumPy reads it (`host_array`).

Nothing here imports torch: such a value can only exist once torch is imported.

Example:

>>> host_array([1, 2]).tolist()  # anything else: np.asarray
[1, 2]
"""

from __future__ import annotations

import sys
from typing import Any, Iterator

import numpy as np


def host_array(value: Any) -> np.ndarray:
    """`np.asarray(value)`; a torch tensor is detached and moved to the CPU first."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        value = value.detach().cpu()
    return np.asarray(value)


class _LoaderTuples:
    """Re-iterable: each pass iterates the loader again; lists become tuples."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def __iter__(self) -> Iterator[Any]:
        for element in self._loader:
            yield tuple(element) if isinstance(element, list) else element


class _SizedLoaderTuples(_LoaderTuples):
    def __len__(self) -> int:
        return len(self._loader)


def loader_elements(data: Any) -> Any:
    """`data`, or a torch `DataLoader`'s batches with list elements as tuples."""
    torch_data = sys.modules.get("torch.utils.data")
    if torch_data is None or not isinstance(data, torch_data.DataLoader):
        return data
    try:
        len(data)  # an IterableDataset's loader has no length
    except TypeError:
        return _LoaderTuples(data)
    return _SizedLoaderTuples(data)

"""The statistics on Apache Beam: initializers from data no single job can read.

`ComputeInitializer(cls, **options)` is a `beam.PTransform` from a PCollection
of examples to a PCollection of exactly one initializer of class `cls`, equal
to `cls.from_dataset(...)` on the same rows: the Beam stages carry the very
states and recipes of `from_dataset` (`keras_biasinit.stats`), merged by Beam
instead of by one process. Exact order statistics (median, quantile, Huber
location) run as a few Beam stages, each planned from the merged state of the
stage before; never as an approximate sketch.

This subpackage needs Apache Beam (`pip install "keras-biasinit[beam]"`);
`import keras_biasinit` alone never imports it.
"""

try:
    import apache_beam  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "keras_biasinit.beam needs Apache Beam, which is not installed. Install "
        'it with `pip install "keras-biasinit[beam]"` (or `pip install '
        'apache-beam`).'
    ) from error

from keras_biasinit.beam.compute_initializer import ComputeInitializer  # noqa: E402

__all__ = ["ComputeInitializer"]

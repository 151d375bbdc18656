"""Finding a model's output heads: which bias the loss sees, and how.

An output's head is the layer whose output reaches the model output through
only output-preserving layers: activations, shape-only layers and affine
layers with a closed form (`keras_biasinit.heads.preserving`); only the
trailing run of such layers counts. The room's pieces:

- `preserving`: which layers preserve the output, and how each moves units;
- `units`: the head's bias units pushed to the loss (`UnitMap`);
- `graph`: the walk back through a functional / `Sequential` / nested graph;
- `trace`: one recorded call of a subclassed model's `call()`;
- `sample`: the few rows a trace runs on;
- `arguments`: `layer=` and `activation=`;
- `find`: `find_heads`, each output's `Head` with its loss's table row.
"""

from keras_biasinit.heads.find import Head
from keras_biasinit.heads.find import find_heads
from keras_biasinit.heads.sample import InputSample
from keras_biasinit.heads.units import UnitMap

__all__ = ["Head", "InputSample", "UnitMap", "find_heads"]

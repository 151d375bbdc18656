"""The best constant of each Keras loss, and the loss it leaves (the table).

`identify_loss` names a compiled loss (`LossSpec`); `rule_for` finds its row
in the table for an output activation (or says, listing the known pairs, that
there is none); a row's `start(...)` makes the output's state (the statistics
protocol: update, merge, arrays), which one pass over the data updates, the
workers of a strategy merge, and whose `result()` is the initializer, with its
`expected_loss` as Keras reports it (`sum_over_batch_size`: the sum of the
weighted per-row losses over the number of rows).
"""

from keras_biasinit.best_constant.spec import LossSpec
from keras_biasinit.best_constant.spec import identify_loss
from keras_biasinit.best_constant.table import KNOWN_PAIRS
from keras_biasinit.best_constant.table import Rule
from keras_biasinit.best_constant.table import made_for
from keras_biasinit.best_constant.table import matches
from keras_biasinit.best_constant.table import rule_for
from keras_biasinit.best_constant.table import searched

__all__ = ["KNOWN_PAIRS", "LossSpec", "Rule", "identify_loss", "made_for",
           "matches", "rule_for", "searched"]

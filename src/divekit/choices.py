"""Every fixed set of choices, listed once.

The config's validation, the command line's ``choices`` and the error
messages all derive from these tuples. The module imports nothing, so the
command line can build its parser without loading PyTorch.
"""

TASKS = ("classification", "language-model", "seq2seq", "regression")
"""The task names that models, data sets and objectives share (the forward contract a model follows)."""

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "step", "cosine", "onecycle")
LR_RULES = ("edge/10", "min/10", "steepest")
"""How the learning-rate finder suggests a value (:func:`divekit.engine.lr_find.suggest`)."""
DISPLAYS = ("auto", "notebook", "terminal", "off")
"""What training shows: ``auto`` picks ``notebook`` inside a Jupyter kernel, else ``terminal``."""
PRECISIONS = ("32", "bf16", "16")
INITS = ("default", "normal", "xavier", "constant")
"""Weight initialisers (notes §1.2.2); ``default`` keeps PyTorch's."""

TOKENS = ("char", "word")
SAMPLINGS = ("sequential", "random")
NORMALIZATIONS = ("letters", "none")

"""``numbers-fr``: English number words to French number words, generated offline.

``three hundred and forty-two`` -> ``trois cent quarante-deux``, for every
number below :data:`LIMIT`, written by the ``num2words`` package. A seeded
shuffle (always the same) sets :data:`TEST_SIZE` numbers aside as the test
split, so no number is in both training and test, and a model must compose
the French of numbers it never saw (``soixante-dix`` is 60 + 10,
``quatre-vingts`` 4 x 20).
"""

from __future__ import annotations

import functools
import random

from divekit.data.registry import register_dataset
from divekit.data.translation import TranslationData, preprocess_nmt
from divekit.errors import DataError

LIMIT = 10_000
TEST_SIZE = 1_000
SPLIT_SEED = 0


def number_pair(n: int) -> tuple[str, str]:
    """The pre-processed English and French words of ``n``."""
    from num2words import num2words

    return preprocess_nmt(num2words(n, lang="en")), preprocess_nmt(num2words(n, lang="fr"))


@functools.lru_cache(maxsize=1)
def _generate() -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    order = list(range(LIMIT))
    random.Random(SPLIT_SEED).shuffle(order)
    pairs = [number_pair(n) for n in order]
    return tuple(pairs[TEST_SIZE:]), tuple(pairs[:TEST_SIZE])


@register_dataset(
    "numbers-fr",
    task="seq2seq",
    description=f"English to French number words, 0-{LIMIT - 1:,}, generated with num2words (embedded, offline default)",
    embedded=True,
    # 9,000 short pairs: fewer passes than the book's 600-pair runs need.
    recipe={"train.epochs": 30, "data.batch_size": 128},
)
def load_numbers_fr(**_: object) -> TranslationData:
    try:
        train, test = _generate()
    except ImportError as err:
        raise DataError("numbers-fr is generated with the num2words package: pip install num2words") from err
    return TranslationData("numbers-fr", list(train), held_out=list(test),
                           description="English to French number words (num2words)")  # fmt: skip

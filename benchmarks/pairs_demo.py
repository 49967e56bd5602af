"""A sentence-pairs file of your own, trained with the Transformer and used for ``divekit translate``.

Writes ``OUT/en-zh.tsv``: every English sentence of a small grammar (subject, an optional "not", a verb,
an object; 384 in all) with its Chinese translation, words separated by spaces (the word tokeniser splits
on spaces, as for fra-eng), for example ``he does not eat rice .<TAB>他 不 吃 米饭 。``. The ``pairs`` data
set holds a tenth of the source sentences out for testing, so the test sentences are new combinations of
known words. Then trains and translates with the commands it prints.

    python benchmarks/pairs_demo.py --out /tmp/pairs-demo
"""

from __future__ import annotations

import argparse
import itertools
import shlex
import subprocess
import sys
import time
from pathlib import Path

from divekit.data.pairs import split_pairs
from divekit.data.translation import read_tab_pairs

SUBJECTS = {"i": ("我", "do"), "you": ("你", "do"), "he": ("他", "does"), "she": ("她", "does"),
            "we": ("我们", "do"), "they": ("他们", "do")}  # fmt: skip
VERBS = {"like": "喜欢", "eat": "吃", "want": "想要", "buy": "买"}
OBJECTS = {"apples": "苹果", "tea": "茶", "rice": "米饭", "books": "书", "bread": "面包", "noodles": "面条",
           "flowers": "花", "fish": "鱼"}  # fmt: skip


def sentence_pairs() -> list[tuple[str, str]]:
    """English and Chinese of every subject x (not) x verb x object."""
    pairs = []
    for (subject, (zi, auxiliary)), negated, (verb, zv), (obj, zo) in itertools.product(
            SUBJECTS.items(), (False, True), VERBS.items(), OBJECTS.items()):  # fmt: skip
        third = auxiliary == "does"
        if negated:
            english = f"{subject} {auxiliary} not {verb} {obj} ."
        else:
            english = f"{subject} {verb + 's' if third else verb} {obj} ."
        pairs.append((english, " ".join([zi, *(["不"] if negated else []), zv, zo, "。"])))
    return pairs


def divekit(*args: str) -> None:
    print("$ divekit " + " ".join(shlex.quote(a) for a in args), flush=True)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "divekit", *args], check=True)
    print(f"({time.perf_counter() - started:.0f}s)", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/pairs-demo")
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pairs_file = out / "en-zh.tsv"
    pairs_file.write_text("".join(f"{en}\t{zh}\n" for en, zh in sentence_pairs()), encoding="utf-8")
    run = str(out / "transformer")
    divekit("train", "transformer", "--data-dir", str(pairs_file), "--val-split", "0.1", "--epochs", str(args.epochs),
            "--batch-size", "32", "--no-progress", "--out", run)  # fmt: skip
    _, test = split_pairs(read_tab_pairs(pairs_file))  # the held-out sentences, as the pairs data set chooses them
    shown = test[:4]
    divekit("translate", run, *[en for en, _ in shown], *[a for _, zh in shown for a in ("--ref", zh)])
    divekit("evaluate", run)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

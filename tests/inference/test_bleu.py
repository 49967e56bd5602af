import math

import pytest

from divekit.inference.bleu import bleu_from_stats, bleu_stats, book_bleu, corpus_bleu


def test_book_bleu_of_the_books_example():
    assert book_bleu("il est riche .", "il est calme .", k=2) == pytest.approx(0.658, abs=5e-4)


def test_book_bleu_perfect_short_and_empty():
    assert book_bleu("va !", "va !") == 1.0
    # two of four reference words, both precisions 1: only the brevity penalty exp(1 - 4/2)
    assert book_bleu("il est", "il est calme .") == pytest.approx(math.exp(-1))
    assert book_bleu("va", "va !") == 0.0  # no bigram to score
    assert book_bleu("", "va !") == 0.0


def test_book_bleu_clips_repeated_words():
    # "le" matches once only: p1 = 1/3, bigrams "le le" match none
    assert book_bleu("le le le", "le chat", k=1) == pytest.approx((1 / 3) ** 0.5)


def test_corpus_bleu_equals_sacrebleu():
    import sacrebleu

    hyps = ["il est calme .", "je suis chez moi .", "va !", "j'ai perdu ."]
    refs = ["il est calme .", "je suis à la maison .", "va !", "j'ai gagné ."]
    assert corpus_bleu(hyps, [[r] for r in refs]) == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)


def test_bleu_statistics_add_up_across_shares():
    hyps = ["il est calme .", "je suis chez moi .", "va !", "j'ai perdu .", "nous sommes là ."]
    refs = [["il est calme ."], ["je suis chez moi .", "je suis à la maison ."], ["va !"], ["j'ai perdu ."],
            ["on est là ."]]  # fmt: skip
    halves = [bleu_stats(hyps[:2], refs[:2]), bleu_stats(hyps[2:], refs[2:])]
    summed = {k: halves[0][k] + halves[1][k] for k in halves[0]}
    assert bleu_from_stats(summed) == pytest.approx(corpus_bleu(hyps, refs))


def test_multiple_references_count_the_best_match():
    assert corpus_bleu(["je suis chez moi ."], [["je suis à la maison .", "je suis chez moi ."]]) == pytest.approx(100)
    assert bleu_from_stats(bleu_stats([], [])) == 0.0


def test_sacrebleu_warns_about_tokenized_text_but_not_detokenized(caplog):
    from divekit.data.translation import detokenize_nmt

    corpus_bleu(["il est calme ."] * 120, [["il est calme ."]] * 120)
    assert "tokenized period" in caplog.text
    caplog.clear()
    corpus_bleu([detokenize_nmt("il est calme .")] * 120, [[detokenize_nmt("il est calme .")]] * 120)
    assert "tokenized period" not in caplog.text

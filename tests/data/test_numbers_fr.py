from divekit.data import load_dataset
from divekit.data.numbers_fr import LIMIT, TEST_SIZE, number_pair


def test_number_words_in_both_languages():
    assert number_pair(342) == ("three hundred and forty-two", "trois cent quarante-deux")
    assert number_pair(1234) == ("one thousand , two hundred and thirty-four", "mille deux cent trente-quatre")
    assert number_pair(80) == ("eighty", "quatre-vingts")


def test_split_is_fixed_and_no_number_is_in_both():
    data = load_dataset("numbers-fr")
    assert data.task == "seq2seq" and len(data.pairs) == LIMIT - TEST_SIZE and len(data.held_out) == TEST_SIZE
    train_sources = {s for s, _ in data.pairs}
    assert len(train_sources) == LIMIT - TEST_SIZE  # English number words are unique
    assert not train_sources & {s for s, _ in data.held_out}
    assert load_dataset("numbers-fr").held_out == data.held_out  # deterministic
    train, test = data.split(num_examples=100, num_test=10)
    assert train == data.pairs[:100] and test == data.held_out[:10]

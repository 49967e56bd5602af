import pytest
import torch

from divekit.models import create_model
from divekit.nn.encoder_decoder import Decoder, Encoder, EncoderDecoder
from divekit.inference.decoding import beam_search, greedy_decode

BOS, EOS, A, B = 0, 1, 2, 3
# P(next | last token): greedy takes A (0.6) then EOS (0.4): P = 0.24; beam search finds B, EOS: P = 0.36.
TABLE = {BOS: [0.0, 0.0, 0.6, 0.4], A: [0.0, 0.4, 0.3, 0.3], B: [0.0, 0.9, 0.05, 0.05]}


class _Source(Encoder):
    def forward(self, X, valid_lens=None):
        return X


class _Table(Decoder):
    """A decoder whose next-token probabilities depend only on the last token."""

    def __init__(self):
        super().__init__()
        self.table = torch.log(torch.tensor([TABLE[t] if t in TABLE else TABLE[A] for t in range(4)]) + 1e-12)

    def init_state(self, enc_outputs, enc_valid_lens=None, *, use_cache=True):
        return None

    def forward(self, X, state):
        return self.table[X], state

    def reorder_state(self, state, index):
        return state


def _toy():
    return EncoderDecoder(_Source(), _Table())


def test_greedy_is_short_sighted_and_beam_search_is_not():
    src, lens = torch.zeros(1, 1, dtype=torch.long), torch.tensor([1])
    assert greedy_decode(_toy(), src, lens, bos=BOS, eos=EOS, max_len=5) == [[A]]
    assert beam_search(_toy(), src, lens, bos=BOS, eos=EOS, max_len=5, beam_size=1, length_penalty=0) == [A]
    assert beam_search(_toy(), src, lens, bos=BOS, eos=EOS, max_len=5, beam_size=2, length_penalty=0) == [B]


def test_beam_search_stops_at_max_len_without_eos():
    src, lens = torch.zeros(1, 1, dtype=torch.long), torch.tensor([1])
    out = beam_search(_toy(), src, lens, bos=BOS, eos=EOS, max_len=1, beam_size=2)
    assert out == [A]  # one step allowed: the best unfinished prefix
    with pytest.raises(ValueError):
        beam_search(_toy(), src, lens, bos=BOS, eos=EOS, max_len=1, beam_size=0)


@pytest.mark.parametrize("name", ["seq2seq", "seq2seq-attention", "transformer"])
def test_beam_of_one_is_greedy_on_real_models(name):
    torch.manual_seed(0)
    model = create_model(name, src_vocab_size=9, tgt_vocab_size=9)
    src = torch.randint(0, 9, (4, 5))
    lens = torch.tensor([5, 3, 1, 4])
    greedy = greedy_decode(model, src, lens, bos=2, eos=3, max_len=7)
    beams = [beam_search(model, src[i : i + 1], lens[i : i + 1], bos=2, eos=3, max_len=7, beam_size=1) for i in range(4)]
    assert beams == greedy
    wide = beam_search(model, src[:1], lens[:1], bos=2, eos=3, max_len=7, beam_size=4)
    assert len(wide) <= 7 and 3 not in wide


def test_decoding_runs_in_eval_mode_and_restores_the_mode():
    torch.manual_seed(0)
    model = create_model("transformer", src_vocab_size=9, tgt_vocab_size=9, dropout=0.9).train()
    src, lens = torch.randint(0, 9, (4, 5)), torch.tensor([5, 3, 1, 4])
    runs = [greedy_decode(model, src, lens, bos=2, eos=3, max_len=6, stop_at_eos=False) for _ in range(3)]
    assert runs[0] == runs[1] == runs[2]  # dropout 0.9 in training mode would make these differ
    assert model.training
    assert torch.is_grad_enabled()  # no_grad is scoped to the call


def test_outputs_are_cut_at_the_first_eos():
    src, lens = torch.zeros(2, 1, dtype=torch.long), torch.tensor([1, 1])
    out = greedy_decode(_toy(), src, lens, bos=BOS, eos=EOS, max_len=5, stop_at_eos=False)
    assert out == [[A], [A]]  # A, EOS, then whatever follows EOS is dropped

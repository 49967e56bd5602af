"""Property-based fuzzing of model files (``divekit train file.py:NAME``, ``--model-file``): whatever the bytes,
loading gives the named object or one clear line, never a traceback of another kind.

Mutations only delete characters of a valid model file or insert digits, punctuation and blanks, so no loop or
huge computation can appear in what runs; binary garbage and text without a newline cover the rest.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from divekit.errors import ConfigError
from divekit.userfile import load_object

VALID = '''import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.fc = nn.Linear(64, num_classes)

    def forward(self, X):
        return self.fc(X.flatten(1))


def make():
    return Net()
'''
INSERTED = st.sampled_from(list("0123456789()[]{}:=,.+-'\"#\n\t \\@;"))
NAMES = st.sampled_from(["Net", "make", "missing", "fc", "torch", "nn"])


@st.composite
def mutated(draw) -> bytes:
    text = VALID
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(text)))
        if draw(st.booleans()):
            text = text[:at] + text[at + draw(st.integers(1, 8)):]
        else:
            text = text[:at] + draw(INSERTED) + text[at:]
    return text.encode()


CONTENTS = st.one_of(mutated(), st.binary(max_size=300), st.text(max_size=200).map(str.encode),
                     st.just(VALID.encode()).map(lambda b: b.replace(b"\n", b"\r")), st.just(b"\xef\xbb\xbf" + VALID.encode()))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=CONTENTS, name=NAMES)
def test_any_model_file_loads_or_is_one_line(tmp_path: Path, content: bytes, name: str):
    path = tmp_path / "model.py"
    path.write_bytes(content)
    try:
        loaded = load_object(path=path, name=name)
    except ConfigError as err:
        message = str(err)
        assert "\n" not in message and message, message
        assert str(path) in message or "model.py" in message, message
        return
    assert loaded.name == name and loaded.sha256 and getattr(loaded, "obj", None) is not None

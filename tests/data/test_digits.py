import torch

from divekit.data import list_datasets, load_dataset


def test_digits_is_embedded_split_and_upsampled():
    data = load_dataset("digits")
    assert len(data.train) == 1437 and len(data.test) == 360
    assert data.train.images.shape[1:] == (1, 28, 28) and data.train.images.dtype == torch.uint8
    assert data.class_names == tuple("0123456789")
    assert data.train.images.max() == 255 and data.train.images.min() == 0
    assert set(data.test.labels.tolist()) == set(range(10))


def test_the_split_is_fixed():
    a, b = load_dataset("digits"), load_dataset("digits")
    assert torch.equal(a.test.images, b.test.images) and torch.equal(a.train.labels, b.train.labels)


def test_registry_lists_the_image_data_sets():
    assert {"digits", "fashion-mnist", "mnist"} <= set(list_datasets("classification"))

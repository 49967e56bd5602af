"""A small CNN written by hand, as notes §1.1 and §2 teach: train it with `divekit train examples/my_cnn.py:SmallCNN`.

``SmallCNN`` takes the keyword options a divekit data set can fill in
(``in_channels``, ``num_classes``) and any of its own (``width``, set with
``--option width=32``).
"""

from torch import nn


class SmallCNN(nn.Module):
    """Two 3x3 convolution blocks with batch norm and max pooling, then a linear classifier (28x28 -> 7x7)."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, kernel_size=3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.MaxPool2d(2),  # 28 -> 14
            nn.Conv2d(width, 2 * width, kernel_size=3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(),
            nn.MaxPool2d(2),  # 14 -> 7
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(2 * width * 7 * 7, num_classes))

    def forward(self, X):
        return self.classifier(self.features(X))  # (N, C, 28, 28) -> (N, num_classes)


class MLP(nn.Module):
    """The notes' multilayer perceptron (§1.1 自定义一个模型): 784 -> 256 -> 10."""

    def __init__(self, num_classes: int = 10, num_hiddens: int = 256) -> None:
        super().__init__()
        self.hidden = nn.Linear(28 * 28, num_hiddens)
        self.out = nn.Linear(num_hiddens, num_classes)

    def forward(self, X):
        return self.out(nn.functional.relu(self.hidden(X.flatten(1))))

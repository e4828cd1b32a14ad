"""Write the example submissions: one complete notebook and variants that each miss one thing.

Run `python submissions/build_examples.py` to regenerate them. The saved outputs are
illustrative figures of a plausible 10-epoch run, written here, not produced by running the
notebook: they exist to exercise the grader's reading of outputs (see submissions/README.md).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from comparative_examples import (BATCHNORM_DISCUSSION, BEST_VAL_DISCUSSION, LENET5_BN, MISSING_COMPONENT_DISCUSSION,
                                  PLAIN_CNN, RESIDUAL_DISCUSSION, SKIP_CNN, WIDE_LENET, WRONG_WINNER_DISCUSSION, run)

HERE = Path(__file__).resolve().parent

SETUP = """import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
import torchvision.transforms as transforms

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
EPOCHS = 10
LR = 0.01
BATCH_SIZE = 64"""

DATA = """transform = transforms.Compose(
    [transforms.ToTensor(), transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])
train_dataset = torchvision.datasets.CIFAR10(root="./data", train=True, download=True, transform=transform)
train_dataset, valid_dataset = torch.utils.data.random_split(
    train_dataset, [40000, 10000], generator=torch.Generator().manual_seed(5))
test_dataset = torchvision.datasets.CIFAR10(root="./data", train=False, download=True, transform=transform)
train_loader = torch.utils.data.DataLoader(train_dataset, batch_size=BATCH_SIZE, shuffle=True)
valid_loader = torch.utils.data.DataLoader(valid_dataset, batch_size=1000)
test_loader = torch.utils.data.DataLoader(test_dataset, batch_size=1000)"""

BASELINE = '''# Model 1: the baseline, LeNet-5 as in the PyTorch CIFAR-10 tutorial
class LeNet5(nn.Module):
    """LeNet-5: two 5x5 convolutions with max-pooling, then three fully connected layers."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)'''

PROPOSED = '''# Model 2: the proposed model, ResDropNet
# Differences from the baseline: 3x3 convolutions with batch normalization, residual
# connections, global average pooling instead of large fully connected layers, and dropout.
class ResidualBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(x + self.bn2(self.conv2(out)))


class {name}(nn.Module):
    def __init__(self, num_classes=10, width=32, dropout=0.3):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        self.stage1 = ResidualBlock(width)
        self.down = nn.Sequential(nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(2 * width), nn.ReLU())
        self.stage2 = ResidualBlock(2 * width)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x):
        x = self.stage2(self.down(self.stage1(self.stem(x))))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(self.dropout(x))'''

TRAIN_FN = '''criterion = nn.CrossEntropyLoss()


def evaluate(model, loader):
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            outputs = model(images)
            total_loss += criterion(outputs, labels).item() * labels.size(0)
            correct += (outputs.argmax(1) == labels).sum().item()
            count += labels.size(0)
    return total_loss / count, correct / count


def train_model(model, train_loader, valid_loader, epochs=EPOCHS, lr=LR):
    """The same optimization configuration for both models: SGD with momentum, fixed lr."""
    model.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    for epoch in range(1, epochs + 1):
        model.train()
        running, batches = 0.0, 0
        for images, labels in train_loader:
            images, labels = images.to(device), labels.to(device)
            optimizer.zero_grad()
            loss = criterion(model(images), labels)
            loss.backward()
            optimizer.step()
            running += loss.item()
            batches += 1
        val_loss, val_acc = evaluate(model, valid_loader)
        {log}
    return model'''


def with_best_val(train_fn: str) -> str:
    """The training function keeping the epoch with the best validation accuracy as the final model."""
    return "import copy\n\n" + train_fn.replace(
        "momentum, fixed lr.\"\"\"",
        "momentum, fixed lr.\n    The final model is the epoch with the best validation accuracy, not the last one.\"\"\"").replace(
        "    for epoch in range(1, epochs + 1):",
        "    best_val_acc = 0.0\n    best_state = copy.deepcopy(model.state_dict())\n    for epoch in range(1, epochs + 1):").replace(
        "        {log}\n    return model",
        "        {log}\n        if val_acc > best_val_acc:\n            best_val_acc = val_acc\n"
        "            best_state = copy.deepcopy(model.state_dict())\n    model.load_state_dict(best_state)\n"
        "    print(f\"Restored the weights with the best validation accuracy ({best_val_acc:.2%})\")\n    return model")


LOG_FULL = 'print(f"Epoch {epoch}/{epochs} | train loss {running / batches:.4f} | val loss {val_loss:.4f} | val acc {val_acc:.2%}")'
LOG_NO_VAL = 'print(f"Epoch {epoch}/{epochs} | train loss {running / batches:.4f}")'

# Illustrative per-epoch figures: (train loss, val loss, val acc) for each model.
BASELINE_RUN = [(1.98, 1.71, 0.372), (1.58, 1.49, 0.458), (1.43, 1.39, 0.497), (1.33, 1.31, 0.531), (1.25, 1.26, 0.551),
                (1.18, 1.22, 0.568), (1.12, 1.20, 0.577), (1.07, 1.18, 0.586), (1.02, 1.17, 0.592), (0.98, 1.17, 0.596)]
PROPOSED_RUN = [(1.52, 1.28, 0.538), (1.10, 1.02, 0.638), (0.92, 0.90, 0.684), (0.81, 0.83, 0.712), (0.73, 0.77, 0.731),
                (0.67, 0.74, 0.744), (0.62, 0.71, 0.754), (0.57, 0.70, 0.761), (0.53, 0.69, 0.766), (0.50, 0.68, 0.771)]
TEST_ACC = {"baseline": 0.6012, "proposed": 0.7654}
BASELINE_TITLES = {"LeNet5": "LeNet-5"}

DISCUSSION = """## 3) Discussion

Under the same optimization configuration (SGD with momentum 0.9, learning rate 0.01, batch size
64, 10 epochs), the proposed ResDropNet clearly outperforms the LeNet-5 baseline: its test accuracy
is 76.5% against 60.1%, and its validation loss (0.68) is much lower than the baseline's (1.17).
The gain comes from batch normalization, which lets every layer train at a useful rate, from the
residual connections, which keep gradients flowing through the deeper network, and from global
average pooling with dropout, which reduces overfitting compared with LeNet's large fully connected
layers. The baseline's validation loss flattens after epoch 8 while its training loss keeps falling,
a sign that it has reached the limit of its capacity to generalize."""


def log_lines(run, with_val: bool) -> str:
    lines = []
    for i, (train, val, acc) in enumerate(run, 1):
        if with_val:
            lines.append(f"Epoch {i}/{len(run)} | train loss {train:.4f} | val loss {val:.4f} | val acc {acc:.2%}")
        else:
            lines.append(f"Epoch {i}/{len(run)} | train loss {train:.4f}")
    return "\n".join(lines) + "\n"


def stream(text: str):
    return new_output("stream", name="stdout", text=text)


def build(*, proposed_name="ResDropNet", with_val=True, with_test=True, discussion=DISCUSSION,
          proposed_lr="LR", proposed_epochs="EPOCHS", proposed_as_class=True, baseline=("LeNet5", BASELINE),
          proposed_code=PROPOSED, train_fn=TRAIN_FN, runs=(BASELINE_RUN, PROPOSED_RUN), test_acc=TEST_ACC,
          closing=("", "")) -> nbformat.NotebookNode:
    """One example notebook; `closing` is a line each model's training prints after its epochs."""
    baseline_name, baseline_code = baseline
    cells = [
        new_markdown_cell("# CIFAR-10: a baseline CNN and a proposed CNN\n\nStudent: Example Student"),
        new_code_cell(SETUP),
        new_code_cell(DATA, outputs=[stream("Files already downloaded and verified\nFiles already downloaded and verified\n")]),
        new_markdown_cell(f"## 1) Two CNN models\n\n### Baseline model: {BASELINE_TITLES.get(baseline_name, baseline_name)}"),
        new_code_cell(baseline_code),
    ]
    if proposed_as_class:
        cells += [new_markdown_cell(f"### Proposed model: {proposed_name}"), new_code_cell(proposed_code.replace("{name}", proposed_name))]
    else:
        cells += [new_markdown_cell("### Proposed model"), new_code_cell(
            "proposed_net = nn.Sequential(\n    nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),\n"
            "    nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),\n    nn.Flatten(), nn.Linear(64 * 8 * 8, 10))")]
    cells += [
        new_markdown_cell("## 2) Training with the same optimization configuration"),
        new_code_cell(train_fn.replace("{log}", LOG_FULL if with_val else LOG_NO_VAL)),
        new_markdown_cell("### Training the baseline"),
        new_code_cell(f"baseline = {baseline_name}()\nbaseline = train_model(baseline, train_loader, valid_loader, epochs=EPOCHS, lr=LR)",
                      outputs=[stream(log_lines(runs[0], with_val) + closing[0])]),
        new_markdown_cell("### Training the proposed model"),
    ]
    build_proposed = f"proposed = {proposed_name}()" if proposed_as_class else "proposed = proposed_net"
    cells.append(new_code_cell(
        f"{build_proposed}\nproposed = train_model(proposed, train_loader, valid_loader, epochs={proposed_epochs}, lr={proposed_lr})",
        outputs=[stream(log_lines(runs[1], with_val) + closing[1])]))
    if with_test:
        test_text = "".join(f"{label} test accuracy: {test_acc[key]:.2%}\n" for key, label in (("baseline", "Baseline"), ("proposed", "Proposed")))
        cells += [new_markdown_cell("### Test accuracy"), new_code_cell(
            'for name, model in [("Baseline", baseline), ("Proposed", proposed)]:\n'
            '    test_loss, test_acc = evaluate(model, test_loader)\n    print(f"{name} test accuracy: {test_acc:.2%}")',
            outputs=[stream(test_text)])]
    cells.append(new_markdown_cell(discussion))
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


# Validation accuracy that peaks before the last epoch: the restored weights are not the last ones.
BEST_VAL_RUNS = (run((1.98, 1.71, 0.372), (0.95, 1.19, 0.597), peak=9), run((1.52, 1.28, 0.538), (0.47, 0.72, 0.771), peak=8))

EXAMPLES = {
    "complete": dict(),
    "missing_discussion": dict(discussion="## 3) Discuss the results and summarize the findings\n\n(Add text here)"),
    "generic_name": dict(proposed_name="Net"),
    "missing_validation": dict(with_val=False),
    "missing_test_accuracy": dict(with_test=False),
    "different_config": dict(proposed_lr="0.001", proposed_epochs="20"),
    "one_cnn_class": dict(proposed_as_class=False),
    # The comparative study (issue 13): what differs between the models, and what the discussion says.
    "batchnorm_ablation": dict(proposed_name="LeNet5BN", proposed_code=LENET5_BN, discussion=BATCHNORM_DISCUSSION,
                               runs=(BASELINE_RUN, run((1.71, 1.49, 0.462), (0.88, 1.03, 0.641))),
                               test_acc={"baseline": 0.6012, "proposed": 0.6418}),
    "residual_ablation": dict(baseline=("PlainCNN", PLAIN_CNN), proposed_name="SkipNet", proposed_code=SKIP_CNN,
                              discussion=RESIDUAL_DISCUSSION,
                              runs=(run((2.12, 1.93, 0.281), (0.86, 0.95, 0.667)), run((1.79, 1.55, 0.437), (0.69, 0.83, 0.714))),
                              test_acc={"baseline": 0.6683, "proposed": 0.7129}),
    "credits_missing_component": dict(proposed_name="WideLeNet", proposed_code=WIDE_LENET, discussion=MISSING_COMPONENT_DISCUSSION,
                                      runs=(BASELINE_RUN, run((1.74, 1.46, 0.478), (0.55, 0.98, 0.684))),
                                      test_acc={"baseline": 0.6012, "proposed": 0.6791}),
    "wrong_winner": dict(discussion=WRONG_WINNER_DISCUSSION),
    "best_val_selection": dict(train_fn=with_best_val(TRAIN_FN), discussion=BEST_VAL_DISCUSSION, runs=BEST_VAL_RUNS,
                               test_acc={"baseline": 0.5947, "proposed": 0.7571},
                               closing=tuple(f"Restored the weights with the best validation accuracy ({max(a for *_, a in r):.2%})\n"
                                             for r in BEST_VAL_RUNS)),
}


def keep_cell_ids(nb: nbformat.NotebookNode, path: Path) -> None:
    """The ids of the notebook already written (nbformat draws new ones): regenerating changes nothing
    that did not change."""
    if path.exists():
        old = nbformat.read(path, as_version=4).cells
        if len(old) == len(nb.cells):
            for cell, before in zip(nb.cells, old):
                cell.id = before.id


def main() -> None:
    for name, options in EXAMPLES.items():
        nb = build(**options)
        path = HERE / f"{name}.ipynb"
        keep_cell_ids(nb, path)
        nbformat.validate(nb)
        path.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
        print(f"wrote submissions/{name}.ipynb")


if __name__ == "__main__":
    main()

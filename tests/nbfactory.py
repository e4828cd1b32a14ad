"""Small factories for test notebooks (nbgrader style): cells and outputs in a line each."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from grader.notebook import Notebook, notebook_from_dict


def code(source: str, *outputs: str | dict) -> nbformat.NotebookNode:
    """A code cell; each string output becomes a stdout stream, a dict a display/execute result."""
    made = []
    for out in outputs:
        if isinstance(out, str):
            made.append(new_output("stream", name="stdout", text=out))
        else:
            made.append(new_output("execute_result", data=out, execution_count=1))
    return new_code_cell(source, outputs=made)


def md(source: str) -> nbformat.NotebookNode:
    return new_markdown_cell(textwrap.dedent(source).strip() + "\n")



def notebook(*cells) -> Notebook:
    """A Notebook from cells; a plain string is a code cell (dedented)."""
    made = [code(textwrap.dedent(c).strip() + "\n") if isinstance(c, str) else c for c in cells]
    return notebook_from_dict(json.loads(nbformat.writes(new_notebook(cells=made))), "test.ipynb")


def write(path: Path, *cells) -> Path:
    path.write_text(nbformat.writes(new_notebook(cells=list(cells))), encoding="utf-8")
    return path


LENET = """import torch.nn as nn
import torch.nn.functional as F

class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc = nn.Linear(16 * 5 * 5, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))
"""

WIDENET = """class WideNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc(self.features(x).flatten(1))
"""


# The sandbox tests' fixtures: the usual imports, the tutorial's LeNet5, and one more class.
IMPORTS = """
import torch
import torch.nn as nn
import torch.nn.functional as F
"""

LENET5 = """
class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)
"""


def model_cells(body: str, name: str = "Hostile", *extra_cells: str) -> list:
    """The cells of a notebook with the usual imports, LeNet5 and one more model class whose body is `body`."""
    sources = [IMPORTS, LENET5, f"class {name}(nn.Module):\n" + textwrap.indent(textwrap.dedent(body).strip(), "    "),
               *extra_cells]
    return [code(textwrap.dedent(c).strip() + "\n") for c in sources]


def model_notebook(body: str, name: str = "Hostile", *extra_cells: str) -> Notebook:
    return notebook(*model_cells(body, name, *extra_cells))

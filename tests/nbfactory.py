"""Small factories for test notebooks (nbgrader style): cells and outputs in a line each."""

from __future__ import annotations

import json
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
    return new_markdown_cell(source)


def notebook(*cells) -> Notebook:
    return notebook_from_dict(json.loads(nbformat.writes(new_notebook(cells=list(cells)))), "test.ipynb")


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

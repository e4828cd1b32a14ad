"""Small notebook factories for tests: cells in, a grader Notebook out (nbgrader's style)."""

from __future__ import annotations

import textwrap

from grader.notebook import notebook_from_dict


def code(source: str) -> dict:
    return {"cell_type": "code", "source": textwrap.dedent(source).strip() + "\n", "outputs": [],
            "metadata": {}, "execution_count": None}


def markdown(source: str) -> dict:
    return {"cell_type": "markdown", "source": textwrap.dedent(source).strip() + "\n", "metadata": {}}


def notebook(*cells: dict | str):
    """A Notebook from cells; a plain string is a code cell."""
    data = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
            "cells": [code(c) if isinstance(c, str) else c for c in cells]}
    return notebook_from_dict(data, "test.ipynb")


IMPORTS = """
import torch
import torch.nn as nn
import torch.nn.functional as F
"""

LENET = """
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


def model_notebook(body: str, name: str = "Hostile", *extra_cells: str):
    """A notebook with the usual imports, LeNet5 and one more model class whose body is `body`."""
    return notebook(IMPORTS, LENET, f"class {name}(nn.Module):\n" + textwrap.indent(textwrap.dedent(body).strip(), "    "),
                    *extra_cells)

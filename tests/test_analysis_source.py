import ast

from grader.analysis.source import Imports, parse_cells, walk_top_level
from nbfactory import code, notebook


def test_imports_resolve_aliases_in_order():
    imports = Imports()
    for stmt in ast.parse("import torch.nn as nn\nfrom torch.nn import functional as F, Conv2d\nimport torchvision").body:
        imports.add(stmt)
    resolve = lambda src: imports.resolve(ast.parse(src, mode="eval").body)  # noqa: E731
    assert resolve("nn.Conv2d") == "torch.nn.Conv2d"
    assert resolve("F.conv2d") == "torch.nn.functional.conv2d"
    assert resolve("Conv2d") == "torch.nn.Conv2d"
    assert resolve("torchvision.models.resnet18") == "torchvision.models.resnet18"
    assert resolve("f(x)") == ""


def test_top_level_walk_enters_blocks_but_not_definitions():
    tree = ast.parse("if x:\n    a = 1\ntry:\n    b = 2\nexcept E:\n    c = 3\ndef f():\n    d = 4\nfor i in r:\n    e = 5\n")
    assigned = [s.targets[0].id for s in walk_top_level(tree) if isinstance(s, ast.Assign)]
    assert assigned == ["a", "b", "c", "e"]


def test_ipython_syntax_becomes_python():
    cells, problems = parse_cells(notebook(code("%matplotlib inline\nout = !nvidia-smi -L\nx = 1"), code("print('100%')")))
    assert problems == ()
    assert cells[0].has_magics and not cells[1].has_magics
    assert "get_ipython().getoutput('nvidia-smi -L')" in cells[0].python

import ast
import subprocess
import sys

import pytest

from grader.analysis import analyze, recovery
from grader.analysis.source import MAX_DEPTH, Imports, parse_cells, walk_top_level
from grader.checks.static import JUDGES
from grader.rubric import load_rubric
from nbfactory import LENET, WIDENET, code, md, notebook
from support import REPO, SUBMISSIONS

# On 3.12 and later the grader's own `ast` reads the newer-syntax cases: nothing is newer there.
grader_is_311 = pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="the cases are newer than Python 3.11")


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


# A cell that does not parse loses only its broken statements (grader/analysis/recovery.py).

def test_a_broken_statement_costs_only_that_statement():
    broken = LENET + "model = LeNet()\nmodel.eval()_\nprint('training'\n" + WIDENET + "x = \ny = 2\n"
    nb = notebook(code(broken))
    a = analyze(nb)
    assert [m.name for m in a.models] == ["LeNet", "WideNet"]
    assert JUDGES["two_cnn_classes"](nb, a, load_rubric()).passed
    assert a.warnings == (
        "cell 0 line 16 is not valid Python (invalid syntax); that statement was skipped",
        "cell 0 line 17 is not valid Python ('(' was never closed); that statement was skipped",
        "cell 0 line 26 is not valid Python (invalid syntax); that statement was skipped",
    )
    cell = a.cells[0]
    assert [s.line for s in cell.skipped] == [16, 17, 26]
    kept = [type(s).__name__ for s in cell.tree.body]
    assert kept == ["Import", "Import", "ClassDef", "Assign", "ClassDef", "Assign"]
    assert cell.tree.body[4].lineno == 18  # line numbers stay the cell's
    assert "statement(s) in 1 cell(s) are not valid Python" in JUDGES["notebook_valid"](nb, a, load_rubric()).message


TEMPLATE = """class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3) +
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Sequential(
            nn.Linear(8, 10), ))
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return self.fc(self.conv1(x))
"""


def test_a_class_with_broken_statements_is_read_without_them():
    a = analyze(notebook(code("import torch.nn as nn\n" + TEMPLATE)))
    assert [(m.name, m.model.is_cnn) for m in a.models] == [("Net", False)]  # its convolution's line is broken
    assert a.warnings == (
        "cell 0 line 5 is not valid Python (invalid syntax); that statement was skipped",
        "cell 0 lines 7-8 is not valid Python (unmatched ')'); that statement was skipped",
    )
    cell = a.cells[0]
    assert [(p.line, p.end_line, [b.where for b in p.broken]) for p in cell.partial] == [(2, 12, ["line 5", "lines 7-8"])]
    init = cell.tree.body[1].body[0]
    assert [type(s).__name__ for s in init.body] == ["Expr", "Pass", "Assign", "Pass", "Assign"]
    assert [s.lineno for s in init.body] == [4, 5, 6, 7, 9]  # line numbers stay the cell's
    assert cell.unrunnable(cell.tree.body[1]) is cell.partial[0] and cell.unrunnable(cell.tree.body[0]) is None
    header = analyze(notebook(code("import torch.nn as nn\nclass Net(nn.Module) ???:\n    def f(self):\n        pass\n")))
    assert header.models == ()  # what is left does not parse either: the statement is skipped whole


def test_a_broken_multi_line_statement_is_named_with_its_lines():
    cells, problems = parse_cells(notebook(code(" if ready:\n    train(model)\n\nif done:\n    x = 1\n")))
    assert problems == ("cell 0 lines 1-2 is not valid Python (unexpected indent); that statement was skipped",)
    assert [type(s).__name__ for s in cells[0].tree.body] == ["If"]


def test_magics_and_a_broken_statement_in_one_cell():
    cells, problems = parse_cells(notebook(code("!pip install torchsummary\n%matplotlib inline\nmodel.eval()_\nz = 3")))
    assert problems == ("cell 0 line 3 is not valid Python (invalid syntax); that statement was skipped",)
    assert cells[0].has_magics
    assert ast.unparse(cells[0].tree).splitlines()[-1] == "z = 3"


def test_a_cell_that_is_not_python_is_one_warning():
    prose = code("The baseline reaches 61% accuracy.\nThe proposed one does better.")
    cells, problems = parse_cells(notebook(prose, code("x = 1")))
    assert problems == ("cell 0 line 1 is not valid Python (invalid syntax); it was skipped",)
    assert cells[0].tree is None and cells[0].error == "invalid syntax" and cells[1].tree is not None


def test_too_deep_or_too_nested_statements_are_skipped_and_the_rest_kept():
    deep = "chain = a" + ".b" * 300  # parses, but deeper than MAX_DEPTH
    limit = "y = " + "+".join(["1"] * 5000)  # beyond what CPython's parser holds
    cells, problems = parse_cells(notebook(code(LENET + deep), code(f"{limit}\nz = 2\nmodel.eval()_")))
    assert [type(s).__name__ for s in cells[0].tree.body][-1] == "ClassDef"
    assert problems[0] == (f"cell 0 line 15 is not valid Python (nested more than {MAX_DEPTH} levels deep); "
                           "that statement was skipped")
    assert [s.line for s in cells[1].skipped] == [1, 3]
    assert ast.unparse(cells[1].tree) == "z = 2"


# Syntax newer than the grader's Python (grader/analysis/downlevel.py, in a child process).

@grader_is_311
def test_a_crashing_or_hanging_newer_syntax_reader_costs_only_the_statements(monkeypatch, tmp_path):
    nb = notebook(code(LENET + 'print(f"{d["key"]}")\n'))
    crash, hang, garbage = ("import os\nos.abort()\n", 10), ("import time\ntime.sleep(60)\n", 1), ("print('[1, 2')", 10)
    for script, timeout in (crash, hang, garbage):
        child = tmp_path / "downlevel.py"
        child.write_text(script)
        monkeypatch.setattr(recovery, "_DOWNLEVEL", child)
        monkeypatch.setattr(recovery, "DOWNLEVEL_TIMEOUT_S", timeout)
        a = analyze(nb)
        assert [m.name for m in a.models] == ["LeNet"]
        assert a.warnings == (
            "cell 0 line 15 is not valid Python (f-string: unmatched '['); that statement was skipped",)


@grader_is_311
@pytest.mark.parametrize("source, syntax, runs", [
    ("try:\n    pass\nexcept ValueError, TypeError:\n    pass", "except A, B: without parentheses (Python 3.14)", True),
    ("type Pair = tuple[int, int]", "a type statement (Python 3.12)", False),
    ("def first[T](items: list[T]) -> T:\n    return items[0]", "type parameters (Python 3.12)", False),
    ('shown = t"{x!r:>6}"', "a t-string (Python 3.14)", False),
])
def test_each_kind_of_newer_syntax_is_named_and_run_only_when_exact(source, syntax, runs):
    cells, problems = parse_cells(notebook(code(f"x = 1\n{source}\ny = 2")))
    how = "reads it as the equivalent Python 3.11 code" if runs else "reads its structure but cannot run it"
    assert problems == (f"cell 0 {cells[0].newer[0].where} uses syntax newer than the grader's Python 3.11 ({syntax}); "
                        f"the grader {how}",)
    x, statement, y = cells[0].tree.body
    assert (cells[0].unrunnable(x), cells[0].unrunnable(y)) == (None, None)
    assert (cells[0].unrunnable(statement) is None) == runs
    compile(cells[0].tree, "cell", "exec")


@grader_is_311
def test_a_312_f_string_is_read_as_equivalent_311_code():
    cell = ('d = {"key": "v"}\nx = 3.14159\nnames = ["a", "b"]\n'
            'text = f"{d["key"]}|{x=:.2f}|{"\\n".join(names)}|{f"{x:{"<"}6.1f}"}|{ x = !r}"\n')
    cells, problems = parse_cells(notebook(code(cell)))
    assert problems == ("cell 0 line 4 uses syntax newer than the grader's Python 3.11 (an f-string that reuses its "
                        "quotes or holds a backslash, comment or line break in a {} field (Python 3.12)); the grader "
                        "reads it as the equivalent Python 3.11 code",)
    namespace: dict = {}
    exec(compile(cells[0].tree, "cell", "exec"), namespace)
    assert namespace["text"] == "v|x=3.14|a\nb|3.1   | x = 3.14159"  # what Python 3.12 prints


@grader_is_311
def test_a_newer_f_string_spanning_lines_keeps_the_cells_line_numbers():
    cell = 'import torch.nn as nn\nlabel = f"{\n    d["key"]  # the run\n}"\n' + WIDENET
    cells, problems = parse_cells(notebook(code(cell)))
    assert problems == ("cell 0 lines 2-4 uses syntax newer than the grader's Python 3.11 (an f-string that reuses its "
                        "quotes or holds a backslash, comment or line break in a {} field (Python 3.12)); the grader "
                        "reads it as the equivalent Python 3.11 code",)
    widenet = cells[0].tree.body[-1]
    assert (widenet.name, widenet.lineno) == ("WideNet", 5)
    assert cells[0].unrunnable(cells[0].tree.body[1]) is None


@grader_is_311
def test_syntax_without_a_311_equivalent_is_analysed_but_marked_unrunnable():
    generic = WIDENET.replace("class WideNet(nn.Module):", "class WideNet[T](nn.Module):")
    nb = notebook(code(LENET + generic + 'print(f"{d["key"]}")\nmodel.eval()_\n'))
    a = analyze(nb)
    assert [m.name for m in a.models] == ["LeNet", "WideNet"]
    assert a.warnings == (
        "cell 0 lines 15-22 uses syntax newer than the grader's Python 3.11 (type parameters (Python 3.12)); "
        "the grader reads its structure but cannot run it",
        "cell 0 line 23 uses syntax newer than the grader's Python 3.11 (an f-string that reuses its quotes or holds a "
        "backslash, comment or line break in a {} field (Python 3.12)); the grader reads it as the equivalent "
        "Python 3.11 code",
        "cell 0 line 24 is not valid Python (invalid syntax); that statement was skipped",
    )
    cell = a.cells[0]
    runnable = {getattr(s, "name", type(s).__name__): cell.unrunnable(s) is None for s in cell.tree.body}
    assert runnable == {"Import": True, "LeNet": True, "WideNet": False, "Expr": True}


def test_a_normal_notebook_never_loads_the_recovery_parsers():
    script = ("import sys\nfrom grader.analysis import analyze\nfrom grader.notebook import load_notebook\n"
              "analyze(load_notebook(sys.argv[1]))\nprint(sorted({'parso', 'libcst'} & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", script, str(SUBMISSIONS / "complete.ipynb")], capture_output=True,
                          text=True, cwd=REPO)
    assert done.stdout.strip() == "[]", done.stderr


# What bounds the reading (grader/analysis/limits.py): budgets and a deadline, each named in a warning.

def test_a_long_cell_of_escapes_is_read_line_by_line_without_ipythons_token_transforms():
    cell = LENET + ("!ls\nx = %time 1\n" + "y = 1\n" * 10) * 300  # 300 escapes in 40,000 characters: over budget
    cells, problems = parse_cells(notebook(code(cell)))
    assert problems == () and cells[0].has_magics
    assert cells[0].python.splitlines()[14:16] == ["get_ipython()", "x = get_ipython()"]  # in place: lines kept
    assert [s.name for s in cells[0].tree.body if isinstance(s, ast.ClassDef)] == ["LeNet"]


def test_ipythons_token_transforms_have_a_budget_for_the_whole_notebook(monkeypatch):
    from grader.analysis import source

    monkeypatch.setattr(source, "MAX_IPYTHON_NOTEBOOK_WORK", 30)  # one cell's work: 10 characters, 1 escape: 20
    cells, problems = parse_cells(notebook(code("!ls\nx = 1"), code("!ls\nx = 1")))
    assert [c.python.splitlines()[0] for c in cells] == ["get_ipython().system('ls')", "get_ipython()"]
    assert problems == () and all(c.has_magics for c in cells)


def test_code_past_the_notebooks_budget_or_its_deadline_is_named_not_read(monkeypatch):
    from grader.analysis import source
    from grader.analysis.limits import Deadline

    nb = notebook(code(LENET), code(WIDENET), code("x = 1"))
    monkeypatch.setattr(source, "MAX_CODE_CHARS", len(LENET) + 10)
    cells, problems = parse_cells(nb)
    assert [c.cell.index for c in cells] == [0]
    assert problems == ("the notebook's code cells hold more than " f"{len(LENET) + 10:,} characters; code cells 1 and 2 not read",)
    monkeypatch.undo()
    cells, problems = parse_cells(nb, Deadline.after(0))
    assert cells == () and problems == ("the notebook took longer than 0 s to read; code cells 0, 1 and 2 not read",)


def test_code_past_the_notebooks_node_budget_is_named_not_read_and_a_long_string_is_one_node():
    from grader.analysis.limits import MAX_CODE_NODES

    table = "TABLE = (\n" + "".join(f"    {'0123456789a' * 10!r}\n" for _ in range(300)) + ")\n"  # 35,000 characters
    dense = "x=1\n" * (MAX_CODE_NODES // 4 + 1)  # Assign, Name, Store, Constant: 4 nodes a line, 1 a character
    cells, problems = parse_cells(notebook(code(LENET), code(table), code(dense), code("y = 2")))
    assert [c.cell.index for c in cells] == [0, 1]  # the table is one string constant: read
    assert problems == (f"the notebook's code holds more than {MAX_CODE_NODES:,} syntax-tree nodes; code cells 2 and 3 "
                        "not read",)


def test_a_spent_deadline_leaves_outputs_and_markdown_unread_and_says_so():
    from grader.analysis.limits import Deadline

    nb = notebook(code(LENET, "Test accuracy: 61%\n"), md("The proposed model is better than the baseline " * 5))
    a = analyze(nb, Deadline.after(0))
    assert a.models == () and a.warnings[0] == "the notebook took longer than 0 s to read; code cell 0 not read"


def test_broken_cells_are_read_statement_by_statement_within_one_budget(monkeypatch):
    broken = "x = 1\nmodel.eval()_\n"
    monkeypatch.setattr(recovery, "MAX_RECOVERED_TOTAL", len(broken) + 5)
    cells, problems = parse_cells(notebook(code(broken), code(broken)))
    assert [ast.unparse(c.tree) if c.tree else None for c in cells] == ["x = 1", None]
    assert problems[-1] == ("cell 1 line 2 is not valid Python (invalid syntax; the notebook's cells that do not parse "
                            f"hold more than {len(broken) + 5:,} characters; this one was not read statement by "
                            "statement); it was skipped")


def test_a_syntax_error_names_the_cells_line_not_the_statements():
    cells, problems = parse_cells(notebook(code("x = 1\ny = 2\nz = (1,\n2]\nw = 3\n")))
    assert problems == ("cell 0 lines 3-4 is not valid Python (closing parenthesis ']' does not match opening "
                        "parenthesis '(' on line 3); that statement was skipped",)


@grader_is_311
def test_where_no_sandbox_works_newer_syntax_is_skipped_and_the_warning_says_why(monkeypatch):
    monkeypatch.setattr(recovery, "_reader_isolation", lambda: "bwrap is not installed (apt-get install bubblewrap)")
    a = analyze(notebook(code(LENET + 'print(f"{d["key"]}")\n')))
    assert [m.name for m in a.models] == ["LeNet"]
    assert a.warnings == (
        "cell 0 line 15 is not valid Python (f-string: unmatched '['); that statement was skipped",
        "syntax newer than Python 3.11 was not read: its reader runs only in a sandbox, and none works here "
        "(bwrap is not installed (apt-get install bubblewrap))")


@grader_is_311
def test_newer_syntax_past_the_readers_budget_is_read_as_311_only(monkeypatch):
    monkeypatch.setattr(recovery, "MAX_DOWNLEVEL_TEXTS", 1)
    f_string = 'x = 1\nprint(f"{d["key"]}")\n'
    cells, problems = parse_cells(notebook(code(f_string), code(f_string)))
    assert [len(c.newer) for c in cells] == [1, 0] and [len(c.skipped) for c in cells] == [0, 1]
    assert problems[-1] == ("syntax newer than Python 3.11 is read in at most 60,000 characters and 1 statements of "
                            "a notebook; cell 1 was read as Python 3.11 only")

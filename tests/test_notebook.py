import json

import pytest

from grader.errors import NotebookError
from grader.notebook import load_notebook
from nbfactory import code, md, write


def test_reads_cells_outputs_and_html(tmp_path):
    path = write(tmp_path / "a.ipynb", md("# Title"), code("print(1)", "1\n", {"text/plain": "x", "text/html": "<table></table>"}))
    nb = load_notebook(path)
    assert [c.kind for c in nb.cells] == ["markdown", "code"]
    assert nb.code_cells[0].outputs[0].text == "1\n"
    assert nb.code_cells[0].outputs[1].html == "<table></table>"


@pytest.mark.parametrize(
    "content, expected",
    [
        (None, "no such file"),
        (b"{not json", "is not valid JSON (line 1, column 2)"),
        (b"\xff\xfe\x00garbage", "is not valid JSON"),
        (json.dumps({"cells": []}).encode(), "is JSON but not a Jupyter notebook"),
        (json.dumps([1, 2]).encode(), "is JSON but not a Jupyter notebook"),
        (json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []}).encode(), "is an empty notebook"),
        (json.dumps({"nbformat": 2, "cells": []}).encode(), "has nbformat 2"),
    ],
)
def test_bad_input_gives_one_line_error(tmp_path, content, expected):
    path = tmp_path / "bad.ipynb"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(NotebookError) as e:
        load_notebook(path)
    assert expected in str(e.value)
    assert "\n" not in str(e.value)


def test_directory_is_rejected(tmp_path):
    with pytest.raises(NotebookError, match="is a folder"):
        load_notebook(tmp_path)


def test_v3_notebook_is_upgraded(tmp_path):
    v3 = {
        "nbformat": 3, "nbformat_minor": 0, "metadata": {"name": "old"},
        "worksheets": [{"cells": [
            {"cell_type": "code", "language": "python", "input": "print('hi')", "prompt_number": 1,
             "outputs": [{"output_type": "stream", "stream": "stdout", "text": "hi\n"}]},
            {"cell_type": "markdown", "source": "Some text"},
        ]}],
    }
    path = tmp_path / "v3.ipynb"
    path.write_text(json.dumps(v3))
    nb = load_notebook(path)
    assert nb.upgraded_from == 3
    assert nb.code_cells[0].source == "print('hi')"
    assert nb.code_cells[0].outputs[0].text == "hi\n"


@pytest.mark.parametrize(
    "data",
    [
        {"nbformat": 4, "metadata": [], "cells": [{"cell_type": "code", "source": "x=1"}]},
        {"nbformat": 4, "metadata": {"language_info": "py"}, "cells": [{"cell_type": "code", "source": "x=1"}]},
        {"nbformat": 4, "cells": [{"cell_type": "code", "source": ["a", 3], "outputs": [{"output_type": "stream", "text": 7}, "junk", {"output_type": "display_data", "data": []}]}]},
        {"nbformat": 4, "cells": [{"cell_type": "code", "source": "(" * 300 + ")" * 300}]},
        {"nbformat": 4, "cells": [{"cell_type": "code", "source": "x = " + "-" * 100_000 + "1"}]},
        {"nbformat": 4, "cells": [{"cell_type": "code", "source": "y = " + "+".join(["1"] * 5000)}]},
        {"nbformat": 4, "cells": [{"source": "no type"}, {"cell_type": "code", "source": "x = 1", "outputs": None}]},
    ],
)
def test_malformed_or_hostile_notebooks_are_analysed_without_crashing(data):
    from grader.analysis import analyze
    from grader.notebook import notebook_from_dict

    analysis = analyze(notebook_from_dict(data))
    assert analysis.models == ()

"""Python newer than the grader's, rewritten as code the grader's Python reads: a child program.

The grader parses with the `ast` of its own Python (3.11), which rejects what later versions
added: f-strings that reuse their quotes or hold a backslash, a comment or a line break in a {}
field (3.12, PEP 701), type parameters and `type` statements (3.12 and 3.13, PEP 695/696),
`except A, B:` without parentheses (3.14, PEP 758) and t-strings (3.14, PEP 750). LibCST, whose
parser follows CPython's grammar up to 3.15, reads such a statement, and a transformer rewrites
each newer construct:

- exactly, where 3.11 has an equivalent: an f-string becomes `'template'.format(args)` (the same
  conversions, format specs and evaluation order, nested f-strings included) and `except A, B:`
  gets its parentheses. The rewritten statement means what the student wrote and runs in the
  grader's sandbox.
- approximately, where it has none: type parameters are dropped, `type X = v` becomes `X = v`
  and a t-string becomes the str its f-string twin gives. The analysis reads the structure; the
  extraction must not run it.

LibCST's parser is native code that recurses on the machine stack: deeply nested input crashes
the process instead of raising (LibCST issues #619, #1000), and nesting makes it slow. So this
file runs as a script in a sandboxed child process (grader.sandbox.process.run_in_sandbox: no
network, not the grader's files or uid, capped memory, the grader's deadline), with only the
standard library and libcst; the grader reads its JSON answer and nothing else
(grader/analysis/recovery.py).

IN_DIR/request.json: a JSON list of texts (a cell, or one statement). out/result.json: a JSON list,
one object per text: {"python": the 3.11 text or null, "error": why not, "statements": [{"line":
where a top-level statement starts, "syntax": [[what is newer, whether rewritten exactly], ...]}, ...]}.
"""

from __future__ import annotations

import ast
import json
import resource
import sys
import warnings
from pathlib import Path

import libcst as cst

_LIBCST_ERRORS = (cst.ParserSyntaxError, cst.CSTValidationError, ValueError, TypeError, RecursionError)
_EMPTY = cst.Module([])  # renders nodes that are not in the parsed module


class _Rewriter(cst.CSTTransformer):
    """Rewrites every construct 3.11 cannot read; `found` says which, and whether exactly."""

    def __init__(self, module: cst.Module):
        super().__init__()
        self.module = module
        self.found: list[tuple[str, bool]] = []

    def leave_FormattedString(self, original: cst.FormattedString, updated: cst.FormattedString) -> cst.BaseExpression:
        if _grader_reads(f"(\n{self.module.code_for_node(original)}\n)"):
            return updated  # an ordinary f-string: leave it as the student wrote it
        call, exact = _format_call(updated, self.module)
        self.found.append(("an f-string that reuses its quotes or holds a backslash, comment or line break in "
                           "a {} field (Python 3.12)", exact))
        return call

    def leave_TemplatedString(self, original: cst.TemplatedString, updated: cst.TemplatedString) -> cst.BaseExpression:
        self.found.append(("a t-string (Python 3.14)", False))  # a Template object: 3.11 has no such thing
        return _format_call(updated, self.module)[0]

    def visit_ConcatenatedString(self, node: cst.ConcatenatedString) -> bool:
        return False  # rewritten whole in leave_: a call cannot stand inside an implicit concatenation

    def leave_ConcatenatedString(self, original: cst.ConcatenatedString,
                                 updated: cst.ConcatenatedString) -> cst.BaseExpression:
        parts, gaps = _concatenated(original)
        rewritten = [part.visit(self) for part in parts]
        if all(isinstance(r, cst.BaseString) for r in rewritten):
            return original
        # `"a" f"{x["k"]}"` whose f-string became a call: for str, implicit concatenation is `+`.
        joined = rewritten[0]
        for gap, right in zip(gaps, rewritten[1:]):
            joined = cst.BinaryOperation(joined, cst.Add(whitespace_before=gap), right)
        return joined.with_changes(lpar=[cst.LeftParen(), *original.lpar], rpar=[*original.rpar, cst.RightParen()])

    def leave_ClassDef(self, original: cst.ClassDef, updated: cst.ClassDef) -> cst.ClassDef:
        return self._without_type_parameters(updated)

    def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef) -> cst.FunctionDef:
        return self._without_type_parameters(updated)

    def _without_type_parameters(self, node):
        if node.type_parameters is None:
            return node
        self.found.append(("type parameters (Python 3.12)", False))
        return node.with_changes(type_parameters=None)

    def leave_TypeAlias(self, original: cst.TypeAlias, updated: cst.TypeAlias) -> cst.Assign:
        self.found.append(("a type statement (Python 3.12)", False))  # lazily evaluated in 3.12, eagerly here
        return cst.Assign(targets=[cst.AssignTarget(updated.name)], value=updated.value)

    def leave_ExceptHandler(self, original: cst.ExceptHandler, updated: cst.ExceptHandler) -> cst.ExceptHandler:
        return self._parenthesized(updated)

    def leave_ExceptStarHandler(self, original: cst.ExceptStarHandler,
                                updated: cst.ExceptStarHandler) -> cst.ExceptStarHandler:
        return self._parenthesized(updated)

    def _parenthesized(self, handler):
        if not isinstance(handler.type, cst.Tuple) or handler.type.lpar:
            return handler
        self.found.append(("except A, B: without parentheses (Python 3.14)", True))
        return handler.with_changes(type=handler.type.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()]))


def _grader_reads(code: str) -> bool:
    """Whether the grader's Python (this one) parses `code`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(code)
        return True
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False


def _format_call(string: cst.FormattedString | cst.TemplatedString, module: cst.Module) -> tuple[cst.Call, bool]:
    """`'template'.format(args)` for an f-string (or t-string), and whether it is exact.

    str.format reads the same replacement fields as an f-string: `{!r:>{}}` with the arguments in
    the fields' order is `f"{x!r:>{w}}"`. The literal text is decoded once, as a plain string with
    the f-string's own prefix and quotes, so escapes mean what they meant; `{{` stays `{{`.
    """
    pieces: list[str | None] = []  # raw literal text, or None where a field's own text goes
    fields: list[str] = []
    args: list[cst.Arg] = []
    _flatten(string.parts, module, pieces, fields, args)
    letters = string.start.rstrip("'\"")
    quote = string.start[len(letters):]
    prefix = letters.lower().replace("f", "").replace("t", "")  # what is left: r, or nothing
    raw = "".join(p for p in pieces if p is not None)
    # A character the literal does not hold marks where the fields go.
    marker = next(chr(c) for c in range(0xE000, 0xF900) if chr(c) not in raw)
    decoded = ast.literal_eval(prefix + quote + "".join(marker if p is None else p for p in pieces) + quote)
    texts = decoded.split(marker)
    if len(texts) != len(fields) + 1:
        raise ValueError("an escape in the f-string decodes to the grader's field marker")
    # An escape that decodes to a brace (`\x7b`) would become a field: then the call is not exact.
    exact = decoded.count("{") == raw.count("{") and decoded.count("}") == raw.count("}")
    template = texts[0] + "".join(f + t for f, t in zip(fields, texts[1:]))
    # The line breaks the call's arguments do not hold themselves go before them: the statement
    # keeps its line count, so line numbers in the grader's messages stay the notebook's.
    lines = module.code_for_node(string).count("\n") - sum(_EMPTY.code_for_node(a).count("\n") for a in args)
    call = cst.Call(func=cst.Attribute(cst.SimpleString(repr(template)), cst.Name("format")), args=args,
                    whitespace_before_args=_line_breaks(lines), lpar=string.lpar, rpar=string.rpar)
    return call, exact


def _flatten(parts, module: cst.Module, pieces: list, fields: list[str], args: list[cst.Arg]) -> None:
    """Literal text into `pieces`, each {} field into `fields` (with its nested spec fields inline)."""
    for part in parts:
        if isinstance(part, (cst.FormattedStringText, cst.TemplatedStringText)):
            pieces.append(part.value)
            continue
        args.append(cst.Arg(part.expression))
        before = ""
        if part.equal is not None:
            # `{x = }` writes the field's text, then the value (its repr unless a spec is given).
            text = "".join((part.whitespace_before_expression.value, module.code_for_node(part.expression),
                            part.whitespace_after_expression.value, module.code_for_node(part.equal)))
            before = text.replace("{", "{{").replace("}", "}}")
        conversion = part.conversion or ("r" if part.equal is not None and not part.format_spec else None)
        spec_pieces: list[str | None] = []
        spec_fields: list[str] = []
        if part.format_spec:
            _flatten(part.format_spec, module, spec_pieces, spec_fields, args)
        pieces.append(None)
        field = "{" + (f"!{conversion}" if conversion else "")
        if part.format_spec:
            # The spec's literal text is decoded with the rest; its nested fields stay fields.
            fields.append(before + field + ":")
            pieces.extend(spec_pieces)
            fields.extend(spec_fields)
            pieces.append(None)
            fields.append("}")
        else:
            fields.append(before + field + "}")


def _concatenated(node: cst.BaseExpression) -> tuple[list[cst.BaseExpression], list]:
    """The strings of an implicit concatenation, left to right, and the whitespace between them."""
    if not isinstance(node, cst.ConcatenatedString):
        return [node], []
    left, left_gaps = _concatenated(node.left)
    right, right_gaps = _concatenated(node.right)
    return left + right, left_gaps + [node.whitespace_between] + right_gaps


def _line_breaks(count: int) -> cst.BaseParenthesizableWhitespace:
    if count == 0:
        return cst.SimpleWhitespace("")
    return cst.ParenthesizedWhitespace(empty_lines=[cst.EmptyLine(indent=False)] * (count - 1),
                                       indent=False, last_line=cst.SimpleWhitespace(""))


def downlevel(text: str) -> dict:
    """A cell or statement as 3.11 code, and what each top-level statement used that is newer."""
    try:
        module = cst.parse_module(text)
    except _LIBCST_ERRORS as e:
        return {"python": None, "statements": [], "error": _first_line(e)}
    body, statements = [], []
    line = 1 + len(module.header)
    for statement in module.body:
        rewriter = _Rewriter(module)
        try:
            body.append(statement.visit(rewriter))
        except (_LIBCST_ERRORS + (SyntaxError,)) as e:
            return {"python": None, "statements": [], "error": f"could not be rewritten ({_first_line(e)})"}
        if rewriter.found:
            statements.append({"line": line + len(statement.leading_lines), "syntax": rewriter.found})
        line += module.code_for_node(statement).count("\n")
    python = module.with_changes(body=body).code
    if not _grader_reads(python):
        return {"python": None, "statements": statements, "error": "uses newer syntax the grader cannot rewrite"}
    return {"python": python, "statements": statements, "error": ""}


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def main(in_dir: Path) -> None:
    # Whatever the input, this child cannot take the machine's memory with it (the sandbox caps it too).
    resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))
    texts = json.loads((in_dir / "request.json").read_text(encoding="utf-8"))
    answers = [downlevel(t) if isinstance(t, str) else {"python": None, "statements": [], "error": "not text"}
               for t in texts]
    Path("out/result.json").write_text(json.dumps(answers), encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]))

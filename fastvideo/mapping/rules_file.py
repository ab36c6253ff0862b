"""Reading a ``--rules`` file (``fastvideo inspect-mapping --rules``, ``fastvideo parity --rules``).

A rules file is either a JSON object or a Python dict literal (what
:func:`~fastvideo.mapping.rules.rules_to_python` writes), one rule per
entry: ``pattern: replacement`` or ``pattern: [target, index, count]``.  Every
problem -- unreadable file, syntax error, a value of the wrong type, a bad
regex, a replacement naming a group the pattern lacks -- raises
:class:`RulesFileError` (a ``ValueError``) naming the file, the line and what a
valid line looks like.  No code is run: Python files are read with ``ast``.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

from fastvideo.mapping.rules import RuleError, compile_rules

VALID_JSON_LINE = r'"^blocks\\.(\\d+)\\.attn\\.q\\.(.*)$": "blocks.\\1.attn1.to_q.\\2",'
VALID_PY_LINE = r"r'^blocks\.(\d+)\.attn\.q\.(.*)$': r'blocks.\1.attn1.to_q.\2',"
EXAMPLE = (
    "a valid rules file is one object of pattern -> replacement (or -> [target, index, count] to fuse), "
    f"one rule per line, e.g. JSON: {{ {VALID_JSON_LINE} }}  or a Python dict literal: {{ {VALID_PY_LINE} }}"
)


class RulesFileError(ValueError):
    """A rules file that cannot be used; the message names the file and the line."""

    def __init__(self, path: str | Path, line: int | None, problem: str):
        where = f"{path}, line {line}" if line else f"{path}"
        super().__init__(f"{where}: {problem}\n  ({EXAMPLE})")
        self.path = str(path)
        self.line = line
        self.problem = problem


def load_rules_file(path: str | Path) -> dict[str, Any]:
    """Rules from a JSON file or a Python dict literal, validated (regexes compiled) with line numbers."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RulesFileError(path, None, f"not a text file ({exc.reason} at byte {exc.start})") from None
    except IsADirectoryError:
        raise RulesFileError(path, None, "is a folder, expected a rules file") from None
    except FileNotFoundError:
        raise RulesFileError(path, None, "file not found") from None
    if not text.strip():
        raise RulesFileError(path, 1, "the file is empty")
    entries = _parse(path, text)
    rules: dict[str, Any] = {}
    lines: list[int | None] = []
    for line, key, value in entries:
        if not isinstance(key, str):
            raise RulesFileError(path, line, f"the pattern {key!r} is not a string")
        if isinstance(value, list):
            value = tuple(value)
        if key in rules:
            raise RulesFileError(path, line, f"the pattern {key!r} appears twice (the first one would be lost)")
        rules[key] = value
        lines.append(line)
    try:
        compile_rules(rules)
    except RuleError as exc:
        raise RulesFileError(path, lines[exc.index] if exc.index < len(lines) else None,
                             f"rule {exc.pattern!r}: {exc.message}") from None
    return rules


def _parse(path: Path, text: str) -> list[tuple[int | None, Any, Any]]:
    """(line, key, value) of every entry, from JSON or from a Python dict literal."""
    suffix = path.suffix.lower()
    if suffix == ".py":
        try:
            return _parse_python(path, text)
        except _PythonSyntax as exc:
            raise RulesFileError(path, exc.line, f"not a valid Python dict literal: {exc.msg}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as json_exc:
        if suffix == ".json":
            raise RulesFileError(path, json_exc.lineno,
                                 f"not valid JSON: {json_exc.msg} (column {json_exc.colno})") from None
        try:
            return _parse_python(path, text)
        except _PythonSyntax as py_exc:
            # Neither: report the parser that got further.
            if (json_exc.lineno, json_exc.colno) >= (py_exc.line, py_exc.col):
                raise RulesFileError(path, json_exc.lineno,
                                     f"not valid JSON: {json_exc.msg} (column {json_exc.colno})") from None
            raise RulesFileError(path, py_exc.line, f"not a valid Python dict literal: {py_exc.msg}") from None
    if not isinstance(data, dict):
        raise RulesFileError(path, 1, f"expected an object of pattern -> replacement, got a JSON {type(data).__name__}")
    out = []
    pos = 0
    for key, value in data.items():
        # json.loads gives no positions: find each key in order (a key written with unusual escapes gets no line).
        at = text.find(json.dumps(key), pos)
        if at >= 0:
            pos = at + 1
            out.append((text.count("\n", 0, at) + 1, key, value))
        else:
            out.append((None, key, value))
    return out


class _PythonSyntax(Exception):
    def __init__(self, msg: str, line: int, col: int):
        super().__init__(msg)
        self.msg, self.line, self.col = msg, line, col


def _parse_python(path: Path, text: str) -> list[tuple[int | None, Any, Any]]:
    first = text[: len(text) - len(text.lstrip())].count("\n")  # lines stripped off the top
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise _PythonSyntax(exc.msg, (exc.lineno or 1) + first, exc.offset or 0) from None
    body = tree.body
    if not isinstance(body, ast.Dict):
        raise _PythonSyntax("expected a dict literal {pattern: replacement, ...}", body.lineno + first,
                            body.col_offset)
    out = []
    for key, value in zip(body.keys, body.values):
        line = (key or value).lineno + first
        if key is None:
            raise RulesFileError(path, line, "'**' unpacking is not allowed in a rules file")
        try:
            out.append((line, ast.literal_eval(key), ast.literal_eval(value)))
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            raise RulesFileError(path, line, "only plain strings, numbers and lists/tuples are allowed "
                                             f"(found {ast.get_source_segment(text.strip(), value) or 'an expression'})"
                                 ) from None
    return out

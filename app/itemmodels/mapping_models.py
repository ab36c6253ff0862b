"""Item models of the weight-mapping inspector.

* :class:`MappingTableModel`: one row per key of a :class:`MappingReport` (thousands of rows;
  model/view, never a widget per row).
* :class:`MappingFilterProxy`: status filter, text or regex search, sorting (shapes sort by
  element count, not as text).
* :class:`RulesModel`: the editable, ordered ``param_names_mapping`` rules, each validated on
  its own so every invalid regex is flagged in its row.
* :func:`evaluate`: headers + rules -> report, through the engine's pure-Python mapping code
  (``fastvideo.mapping.rules``): no tensors, no torch, milliseconds.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont

from app.itemmodels.table_base import ColumnTableModel
from fastvideo.mapping.rules import (
    STATUSES,
    MappingReport,
    MappingRow,
    RuleError,
    TargetInfo,
    TensorInfo,
    build_report,
    compile_rules,
    rules_from_python,
    rules_list,
    rules_to_arch_config,
    rules_to_python,
)

RowRole = Qt.ItemDataRole.UserRole + 1
StatusRole = Qt.ItemDataRole.UserRole + 2
SortKeyRole = Qt.ItemDataRole.UserRole + 3
ErrorRole = Qt.ItemDataRole.UserRole + 4

STATUS_LABELS = {"mapped": "mapped", "merged": "merged", "missing": "missing", "unexpected": "unexpected",
                 "shape_mismatch": "shape mismatch", "duplicate_target": "duplicate target", "ignored": "ignored"}
STATUS_COLORS = {"mapped": "#45c486", "merged": "#6fb4ff", "missing": "#ff6b6b", "unexpected": "#d9a441",
                 "shape_mismatch": "#ff8f5a", "duplicate_target": "#ff5fa2", "ignored": "#8b95a3"}
NEAR_MISS_BG = QColor("#3a2f12")


@dataclass
class MappingInputs:
    """Everything needed to (re)build a report without the model: headers and target shapes."""

    component: str
    source: dict[str, TensorInfo]
    target: dict[str, TargetInfo]
    default_rules: list[tuple[str, Any]] = field(default_factory=list)

    @classmethod
    def from_json(cls, component: str, data: dict[str, Any]) -> MappingInputs:
        source = {k: TensorInfo(tuple(v["shape"]), str(v["dtype"])) for k, v in data["source"].items()}
        target = {k: TargetInfo(tuple(v["shape"]), tuple(v.get("aliases") or ())) for k, v in data["target"].items()}
        rules = [(str(p), tuple(v) if isinstance(v, list) else v) for p, v in data.get("rules", [])]
        return cls(component, source, target, rules)


def rule_value(replacement: str, part: int | None, count: int | None, ignore: bool = False) -> Any:
    if ignore:
        return None  # an ignore rule: matching checkpoint keys are dropped
    return replacement if count is None else (replacement, part, count)


def evaluate(inputs: MappingInputs, rules: list[tuple[str, Any]],
             disabled: set[int] | frozenset[int] = frozenset()) -> tuple[MappingReport, dict[int, str]]:
    """Report for ``rules`` (rules with errors and ``disabled`` rows are skipped) and {rule index: error}."""
    errors: dict[int, str] = {}
    good: list[tuple[str, Any]] = []
    index_of: list[int] = []
    for i, (pattern, value) in enumerate(rules):
        if i in disabled:
            continue
        try:
            compile_rules([(pattern, value)])
        except RuleError as exc:
            errors[i] = exc.message
            continue
        good.append((pattern, value))
        index_of.append(i)
    compiled = compile_rules(good)
    report = build_report(inputs.source, inputs.target, compiled, inputs.component)
    for row in report.rows:  # rule numbers as shown in the editor (skipped ones count)
        if row.rule is not None:
            row.rule = index_of[row.rule]
    return report, errors


def _shape_text(shape: list[int] | None) -> str:
    return "" if shape is None else "[" + ", ".join(str(d) for d in shape) + "]"


def _numel(shape: list[int] | None) -> int:
    if shape is None:
        return -1
    n = 1
    for d in shape:
        n *= d
    return n


class MappingTableModel(ColumnTableModel):
    COLUMNS = ("Source key", "Rule", "Target key", "Status", "Source shape", "Target shape", "dtype")
    SOURCE, RULE, TARGET, STATUS, SRC_SHAPE, TGT_SHAPE, DTYPE = range(7)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows: list[MappingRow] = []
        self.highlighted: set[int] = set()  # rows shown as near-miss candidates
        self._bold = QFont()
        self._bold.setBold(True)

    def set_report(self, report: MappingReport | None) -> None:
        self.beginResetModel()
        self.rows = list(report.rows) if report is not None else []
        self.highlighted = set()
        self.endResetModel()

    def row_at(self, row: int) -> MappingRow | None:
        return self.rows[row] if 0 <= row < len(self.rows) else None

    def find(self, source: str | None, target: str | None) -> int:
        for i, r in enumerate(self.rows):
            if r.source == source and (source is not None or r.target == target):
                return i
        return -1

    def set_highlighted(self, rows: set[int]) -> None:
        changed = self.highlighted ^ rows
        self.highlighted = set(rows)
        for r in changed:
            if 0 <= r < len(self.rows):
                self.dataChanged.emit(self.index(r, 0), self.index(r, len(self.COLUMNS) - 1),
                                      [Qt.ItemDataRole.BackgroundRole])

    def row_items(self):
        return self.rows

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not (0 <= index.row() < len(self.rows)):
            return None
        r = self.rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == self.SOURCE:
                return r.source or "—"
            if col == self.RULE:
                return "" if r.rule is None else f"#{r.rule}"
            if col == self.TARGET:
                return r.target or ""
            if col == self.STATUS:
                return STATUS_LABELS.get(r.status, r.status)
            if col == self.SRC_SHAPE:
                return _shape_text(r.source_shape)
            if col == self.TGT_SHAPE:
                return _shape_text(r.target_shape)
            if col == self.DTYPE:
                return r.dtype or ""
        if role == SortKeyRole:
            if col == self.RULE:
                return -1 if r.rule is None else r.rule
            if col == self.SRC_SHAPE:
                return _numel(r.source_shape)
            if col == self.TGT_SHAPE:
                return _numel(r.target_shape)
            if col == self.STATUS:
                return STATUSES.index(r.status) if r.status in STATUSES else 99
            return str(self.data(index) or "")
        if role == RowRole:
            return r
        if role == StatusRole:
            return r.status
        if role == Qt.ItemDataRole.ForegroundRole and col == self.STATUS:
            return QBrush(QColor(STATUS_COLORS.get(r.status, "#d8dee6")))
        if role == Qt.ItemDataRole.BackgroundRole and index.row() in self.highlighted:
            return QBrush(NEAR_MISS_BG)
        if role == Qt.ItemDataRole.FontRole and index.row() in self.highlighted:
            return self._bold
        if role == Qt.ItemDataRole.ToolTipRole:
            return r.detail or None
        return None


class MappingFilterProxy(QSortFilterProxyModel):
    """Rows of the chosen statuses whose source or target key matches the search."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.statuses: set[str] | None = None  # None: all
        self.pattern = ""
        self.use_regex = False
        self.regex: re.Pattern | None = None
        self.regex_error = ""
        self.setSortRole(SortKeyRole)

    def set_statuses(self, statuses: set[str] | None) -> None:
        self.beginFilterChange()
        self.statuses = None if statuses is None else set(statuses)
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def set_search(self, text: str, use_regex: bool = False) -> None:
        self.beginFilterChange()
        self.pattern, self.use_regex = text, use_regex
        self.regex, self.regex_error = None, ""
        if text and use_regex:
            try:
                self.regex = re.compile(text)
            except re.error as exc:
                self.regex_error = str(exc)
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex) -> bool:  # noqa: N802
        model = self.sourceModel()
        row = model.row_at(source_row) if hasattr(model, "row_at") else None
        if row is None:
            return True
        if self.statuses is not None and row.status not in self.statuses:
            return False
        if not self.pattern:
            return True
        names = [n for n in (row.source, row.target) if n]
        if self.use_regex:
            if self.regex is None:
                return True  # an invalid regex filters nothing (it is flagged next to the field)
            return any(self.regex.search(n) for n in names)
        needle = self.pattern.lower()
        return any(needle in n.lower() for n in names)


class RulesModel(ColumnTableModel):
    """Ordered ``(pattern, replacement | (target, part, count) | None)`` rules, editable in a table.

    Rules are ordered data (first match wins): they are kept, handed on and exported as a list of
    pairs, never as a map.  Each row can be switched off ("On") and can be an *ignore* rule
    ("Ignore": the replacement is ``None``, matching checkpoint keys are dropped).
    """

    COLUMNS = ("#", "On", "Pattern (regex)", "Replacement", "Part", "Of", "Ignore", "Hits")
    NUM, ENABLED, PATTERN, REPLACEMENT, PART, COUNT, IGNORE, HITS = range(8)

    rules_changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        # [pattern, replacement, part|None, count|None, ignore, enabled]
        self.items: list[list[Any]] = []
        self.errors: dict[int, str] = {}
        self.hits: dict[int, int] = {}
        self.edited = False  # changed since the last set_rules

    # ------------------------------------------------------------------ content
    def set_rules(self, rules: list[tuple[str, Any]] | dict[str, Any]) -> None:
        self.beginResetModel()
        self.items = []
        for pattern, value in rules_list(rules):
            if value is None:
                self.items.append([str(pattern), "", None, None, True, True])
            elif isinstance(value, (tuple, list)) and len(value) == 3:
                self.items.append([str(pattern), str(value[0]), int(value[1]), int(value[2]), False, True])
            else:
                self.items.append([str(pattern), str(value), None, None, False, True])
        self.errors, self.hits = {}, {}
        self.endResetModel()
        self.rules_changed.emit()
        self.edited = False

    def rules(self) -> list[tuple[str, Any]]:
        """Every row as (pattern, value), in order (disabled rows included: see :meth:`disabled`)."""
        return [(it[0], rule_value(it[1], it[2], it[3], it[4])) for it in self.items]

    def disabled(self) -> set[int]:
        return {i for i, it in enumerate(self.items) if not it[5]}

    def active_rules(self) -> list[tuple[str, Any]]:
        """The rules that apply, in order: enabled and valid ones."""
        off = self.disabled()
        return [r for i, r in enumerate(self.rules()) if i not in off and i not in self.errors]

    def valid_rules_dict(self) -> dict[str, Any]:
        """The active rules as a dict (order kept; for callers that want a mapping)."""
        return dict(self.active_rules())

    def export_problems(self) -> list[str]:
        """Why the rules cannot be written as a param_names_mapping: invalid rows and repeated patterns,
        each naming the rule (empty: fine)."""
        problems = [f"rule #{i} ({self.items[i][0]!r}): {msg}" for i, msg in sorted(self.errors.items())
                    if self.items[i][5]]
        seen: dict[str, int] = {}
        off = self.disabled()
        for i, (p, _v) in enumerate(self.rules()):
            if i in off:
                continue
            if p in seen:
                problems.append(f"rule #{i} ({p!r}): same pattern as rule #{seen[p]} (a mapping keeps only one)")
            seen.setdefault(p, i)
        return problems

    def set_status(self, errors: dict[int, str], hits: dict[int, int]) -> None:
        self.errors, self.hits = dict(errors), dict(hits)
        if self.items:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self.items) - 1, len(self.COLUMNS) - 1))

    # ------------------------------------------------------------------ Qt model
    def row_items(self) -> list[list[Any]]:
        return self.items

    def flags(self, index: QModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        f = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if index.column() in (self.PATTERN, self.REPLACEMENT, self.PART, self.COUNT):
            f |= Qt.ItemFlag.ItemIsEditable
        if index.column() in (self.ENABLED, self.IGNORE):
            f |= Qt.ItemFlag.ItemIsUserCheckable
        return f

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not (0 <= index.row() < len(self.items)):
            return None
        row, col = index.row(), index.column()
        pattern, repl, part, count, ignore, enabled = self.items[row]
        if role == Qt.ItemDataRole.CheckStateRole:
            if col == self.ENABLED:
                return Qt.CheckState.Checked if enabled else Qt.CheckState.Unchecked
            if col == self.IGNORE:
                return Qt.CheckState.Checked if ignore else Qt.CheckState.Unchecked
            return None
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            if col == self.NUM:
                return str(row)
            if col == self.PATTERN:
                return pattern
            if col == self.REPLACEMENT:
                return "(dropped)" if ignore and role == Qt.ItemDataRole.DisplayRole else repl
            if col == self.PART:
                return "" if part is None else str(part)
            if col == self.COUNT:
                return "" if count is None else str(count)
            if col == self.HITS:
                return "off" if not enabled else "" if row in self.errors else str(self.hits.get(row, 0))
            return ""
        if role == ErrorRole:
            return self.errors.get(row)
        if role == Qt.ItemDataRole.ToolTipRole:
            if row in self.errors:
                return f"Invalid: {self.errors[row]}"
            if col in (self.PART, self.COUNT):
                return "Fused target: this source is part PART (0-based) of OF tensors concatenated on dim 0"
            if col == self.IGNORE:
                return "Ignore rule: checkpoint keys this pattern matches are truly extra and are dropped " \
                       "(replacement None in the arch config, null in JSON)"
            if col == self.ENABLED:
                return "Off: the rule is kept in the editor but not applied, exported or sent to parity"
            return None
        if role == Qt.ItemDataRole.BackgroundRole and row in self.errors:
            return QBrush(QColor("#4a1f24"))
        if role == Qt.ItemDataRole.ForegroundRole:
            if not enabled:
                return QBrush(QColor("#6c7684"))
            if row in self.errors and col in (self.PATTERN, self.REPLACEMENT, self.PART, self.COUNT):
                return QBrush(QColor("#ff9a9a"))
            if col == self.HITS and row not in self.errors and not self.hits.get(row):
                return QBrush(QColor("#6c7684"))
        return None

    def setData(self, index: QModelIndex, value: Any, role=Qt.ItemDataRole.EditRole) -> bool:  # noqa: N802
        if not index.isValid() or not (0 <= index.row() < len(self.items)):
            return False
        row, col = index.row(), index.column()
        item = self.items[row]
        if role == Qt.ItemDataRole.CheckStateRole and col in (self.ENABLED, self.IGNORE):
            checked = value in (Qt.CheckState.Checked, Qt.CheckState.Checked.value, 2, True)
            item[5 if col == self.ENABLED else 4] = checked
            self.edited = True
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.COLUMNS) - 1))
            self.rules_changed.emit()
            return True
        if role != Qt.ItemDataRole.EditRole:
            return False
        text = "" if value is None else str(value)
        if col == self.PATTERN:
            item[0] = text
        elif col == self.REPLACEMENT:
            item[1] = text
        elif col in (self.PART, self.COUNT):
            text = text.strip()
            if text == "":
                item[2] = item[3] = None  # a plain rename
            else:
                try:
                    n = int(text)
                except ValueError:
                    return False
                item[2 if col == self.PART else 3] = n
                other = 3 if col == self.PART else 2
                if item[other] is None:
                    item[other] = 0 if other == 2 else max(n + 1, 2)
        else:
            return False
        self.edited = True
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.COLUMNS) - 1))
        self.rules_changed.emit()
        return True

    def insertRows(self, row: int, count: int, parent=QModelIndex()) -> bool:  # noqa: N802
        if parent.isValid() or count < 1 or not (0 <= row <= len(self.items)):
            return False
        self.beginInsertRows(QModelIndex(), row, row + count - 1)
        for _ in range(count):
            self.items.insert(row, ["", "", None, None, False, False])  # empty and off until filled in
        self.endInsertRows()
        self.edited = True
        self.rules_changed.emit()
        return True

    def removeRows(self, row: int, count: int, parent=QModelIndex()) -> bool:  # noqa: N802
        if parent.isValid() or count < 1 or row < 0 or row + count > len(self.items):
            return False
        self.beginRemoveRows(QModelIndex(), row, row + count - 1)
        del self.items[row:row + count]
        self.endRemoveRows()
        self.edited = True
        self.rules_changed.emit()
        return True

    def moveRows(self, src_parent, src_row: int, count: int, dst_parent, dst_child: int) -> bool:  # noqa: N802
        if src_parent.isValid() or dst_parent.isValid() or count < 1:
            return False
        if src_row < 0 or src_row + count > len(self.items) or not (0 <= dst_child <= len(self.items)):
            return False
        if src_row <= dst_child <= src_row + count:
            return False  # no-op or into itself
        if not self.beginMoveRows(QModelIndex(), src_row, src_row + count - 1, QModelIndex(), dst_child):
            return False
        moving = self.items[src_row:src_row + count]
        del self.items[src_row:src_row + count]
        at = dst_child - count if dst_child > src_row else dst_child
        self.items[at:at] = moving
        self.endMoveRows()
        self.edited = True
        self.rules_changed.emit()
        return True

    def add_rule(self, pattern: str, replacement: str | None, part: int | None = None, count: int | None = None,
                 row: int | None = None, enabled: bool = True) -> int:
        """Insert a rule (``replacement`` None: an ignore rule)."""
        row = len(self.items) if row is None else max(0, min(row, len(self.items)))
        self.beginInsertRows(QModelIndex(), row, row)
        self.items.insert(row, [pattern, replacement or "", part, count, replacement is None, enabled])
        self.endInsertRows()
        self.edited = True
        self.rules_changed.emit()
        return row

    def move(self, row: int, delta: int) -> int:
        """Move one rule up (-1) or down (+1); returns its new row."""
        new = row + delta
        if not (0 <= row < len(self.items)) or not (0 <= new < len(self.items)):
            return row
        self.moveRows(QModelIndex(), row, 1, QModelIndex(), new + 1 if delta > 0 else new)
        return new

    # ------------------------------------------------------------------ import / export
    def to_python(self) -> str:
        """The active rules as a Python dict literal, in order."""
        return rules_to_python(self.active_rules())

    def to_arch_config(self) -> str:
        """A ready-to-paste ``param_names_mapping`` field for the arch config (active rules, in order)."""
        return rules_to_arch_config(self.active_rules())

    def to_json(self) -> str:
        """The active rules as a JSON object, in order (``null``: ignore; ``fastvideo ... --rules`` reads it)."""
        return json.dumps({p: (list(v) if isinstance(v, tuple) else v) for p, v in self.active_rules()}, indent=2)


def rules_json(rules: list[tuple[str, Any]] | dict[str, Any]) -> list[list[Any]]:
    """Rules in their wire form: ``[[pattern, replacement | [target, part, count] | null], ...]`` (ordered)."""
    return [[p, list(v) if isinstance(v, tuple) else v] for p, v in rules_list(rules)]


def parse_rules_text(text: str) -> list[tuple[str, Any]]:
    """Ordered rules from JSON (an object ``{pattern: replacement | [target, part, count] | null}`` or a list
    of ``[pattern, replacement]`` pairs) or a Python dict literal."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return rules_list(rules_from_python(text))
    if not isinstance(data, (dict, list)):
        raise ValueError("expected a JSON object of pattern -> replacement (or a list of [pattern, replacement])")
    return rules_list(data)

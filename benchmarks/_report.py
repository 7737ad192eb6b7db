"""Figures, comparison rows and the results table.

A :class:`Figure` is one client's repeated measurements (each a worker ``RESULT``); its
per-operation numbers are medians over the repetitions. A :class:`Row` compares one figure
with a baseline figure from the same run: the ratio ``value / baseline`` and, when the row
has a target, PASS or FAIL. Rows whose figure or baseline could not be measured say SKIP
(not available here) or ERROR (the worker failed), with the reason in ``note``.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Optional

__all__ = ["TABLE_HEADER", "Figure", "Row", "Target", "compare", "render_table"]

TABLE_HEADER = (
    "Case",
    "Metric",
    "Client",
    "Value",
    "Baseline",
    "Baseline value",
    "Ratio",
    "Target",
    "Result",
)


@dataclass
class Figure:
    """One client's results over the repetitions of a case."""

    label: str
    samples: list[dict[str, Any]] = field(default_factory=list)
    skip: Optional[str] = None
    error: Optional[str] = None

    def add(self, result: dict[str, Any]) -> None:
        """Record one worker result (a skip or an error ends the figure)."""
        if "skip" in result:
            self.skip = result["skip"]
        elif "error" in result:
            self.error = result["error"]
        else:
            self.samples.append(result)

    @property
    def ok(self) -> bool:
        """Whether the figure has numbers (no skip, no error)."""
        return bool(self.samples) and self.skip is None and self.error is None

    def per_op(self, key: str) -> float:
        """Median over the repetitions of ``sample[key] / sample["ops"]``."""
        return statistics.median(s[key] / s["ops"] for s in self.samples)

    def median(self, key: str) -> float:
        """Median over the repetitions of ``sample[key]``."""
        return statistics.median(s[key] for s in self.samples)

    def best(self, key: str) -> float:
        """Smallest ``sample[key]`` over the repetitions."""
        return min(s[key] for s in self.samples)

    def spread(self, key: str) -> tuple[float, float]:
        """``(min, max)`` of ``sample[key] / sample["ops"]`` over the repetitions."""
        values = [s[key] / s["ops"] for s in self.samples]
        return min(values), max(values)

    def summary(self) -> dict[str, Any]:
        """The figure as plain data for the JSON results."""
        out: dict[str, Any] = {"label": self.label, "samples": self.samples}
        if self.skip is not None:
            out["skip"] = self.skip
        if self.error is not None:
            out["error"] = self.error
        if self.ok and all("cpu" in s and s.get("ops") for s in self.samples):
            out["cpu_per_op_median"] = self.per_op("cpu")
            out["wall_per_op_median"] = self.per_op("wall")
            out["cpu_per_op_range"] = list(self.spread("cpu"))
        return out


@dataclass(frozen=True)
class Target:
    """A pass condition on a ratio: ``ratio <= limit`` (or ``<`` when ``strict``)."""

    limit: float
    strict: bool = False

    def met(self, ratio: float) -> bool:
        """Whether ``ratio`` meets the target."""
        return ratio < self.limit if self.strict else ratio <= self.limit

    def __str__(self) -> str:
        return f"{'<' if self.strict else '<='} {self.limit:.2f}x"


@dataclass
class Row:
    """One line of the table: a figure against its baseline."""

    case: str
    metric: str
    client: str
    value: Optional[float]
    baseline: str
    baseline_value: Optional[float]
    unit: str
    target: Optional[Target] = None
    result: str = "INFO"
    note: str = ""
    ratio: Optional[float] = None
    target_text: str = "report"

    def cells(self) -> tuple[str, ...]:
        """The row's table cells as text."""
        ratio = "-" if self.ratio is None else f"{self.ratio:.2f}x"
        return (
            self.case,
            self.metric,
            self.client,
            _fmt(self.value, self.unit),
            self.baseline,
            _fmt(self.baseline_value, self.unit),
            ratio,
            self.target_text,
            self.result,
        )

    def as_dict(self) -> dict[str, Any]:
        """The row as plain data for the JSON results."""
        data = asdict(self)
        data["target"] = None if self.target is None else str(self.target)
        return data


def _fmt(value: Optional[float], unit: str) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".rstrip()


def compare(
    case: str,
    metric: str,
    subject: Figure,
    baseline: Figure,
    *,
    value: Callable[[Figure], float],
    unit: str,
    target: Optional[Target] = None,
    target_text: Optional[str] = None,
) -> Row:
    """A row comparing ``subject`` with ``baseline`` on ``value(figure)``."""
    row = Row(
        case=case,
        metric=metric,
        client=subject.label,
        value=None,
        baseline=baseline.label,
        baseline_value=None,
        unit=unit,
        target=target,
        target_text=target_text or (str(target) if target else "report"),
    )
    for figure in (subject, baseline):
        if figure.error is not None:
            row.result, row.note = "ERROR", f"{figure.label}: {figure.error}"
            return row
        if figure.skip is not None:
            row.result, row.note = "SKIP", f"{figure.label}: {figure.skip}"
            if figure is baseline and subject.ok:
                row.value = value(subject)
            return row
    row.value = value(subject)
    row.baseline_value = value(baseline)
    if row.baseline_value:
        row.ratio = row.value / row.baseline_value
    if target is not None and row.ratio is not None:
        row.result = "PASS" if target.met(row.ratio) else "FAIL"
    return row


def render_table(rows: list[Row]) -> str:
    """The rows as a Markdown-style table, then one line per SKIP/ERROR reason."""
    cells = [TABLE_HEADER, *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(TABLE_HEADER))]
    numeric = {3, 5, 6}

    def line(values: tuple[str, ...]) -> str:
        parts = [
            v.rjust(widths[i]) if i in numeric else v.ljust(widths[i]) for i, v in enumerate(values)
        ]
        return "| " + " | ".join(parts) + " |"

    out = [line(TABLE_HEADER), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out.extend(line(row.cells()) for row in rows)
    notes = [f"  {row.result}: {row.case} / {row.client}: {row.note}" for row in rows if row.note]
    if notes:
        out.append("")
        out.extend(dict.fromkeys(notes))
    return "\n".join(out)

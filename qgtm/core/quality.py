"""The data-quality vocabulary shared by the engine's suite and the Data screen."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class Severity(StrEnum):
    """How bad a failed check is: CRITICAL blocks trading on the affected symbols."""

    WARNING = "WARNING"
    CRITICAL = "CRITICAL"


@dataclass(frozen=True, slots=True)
class QualityFailure:
    """One failed check on one observation (or on the sequence, dated by its last day)."""

    dataset: str
    subject: str
    check: str
    severity: Severity
    day: date
    detail: str


@dataclass(frozen=True, slots=True)
class DatasetStatus:
    """One stored dataset as the Data screen shows it."""

    dataset: str
    rows: int
    first: date | None
    last: date | None
    last_update: str
    freshness_days: int | None
    status: str
    critical: int
    warnings: int

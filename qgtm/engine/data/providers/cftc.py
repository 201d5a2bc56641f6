"""CFTC Commitments of Traders: legacy and disaggregated futures-only reports.

Source files: the yearly history zips the CFTC publishes (one CSV-with-header text file
inside each), `deacot{YYYY}.zip` (legacy) and `fut_disagg_txt_{YYYY}.zip`
(disaggregated), under https://www.cftc.gov/files/dea/history/. Columns are found by
name, normalised to lower snake case so the legacy spelling ("Market and Exchange
Names", "As of Date in Form YYMMDD") and the disaggregated one
("Market_and_Exchange_Names", "As_of_Date_In_Form_YYMMDD") meet. Markets are picked by
CFTC contract market code, which survives the exchange renames in the name column.

knowledge_time: the Friday 15:30 ET release after the Tuesday as-of date
(release.cot_release documents the holiday rule).
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
from dataclasses import dataclass
from datetime import date

import polars as pl

from qgtm.engine.data.providers.base import (
    SERIES_SCHEMA,
    HttpPolicy,
    HttpSource,
    SchemaError,
    base_url,
    validate_frame,
)
from qgtm.engine.data.providers.release import cot_release

log = logging.getLogger(__name__)

CFTC_URL = "https://www.cftc.gov"

MARKETS = {
    "088691": "gold",
    "084691": "silver",
    "067651": "crude",
    "023651": "natgas",
    "002602": "corn",
    "001602": "wheat",
    "005602": "soybeans",
    "085692": "copper",
}


@dataclass(frozen=True, slots=True)
class CotReport:
    """One COT report family: its zip name and the nets it stores (name -> long, short)."""

    dataset: str
    zip_name: str
    nets: dict[str, tuple[str, str]]


LEGACY = CotReport(
    "cot_legacy",
    "deacot{year}.zip",
    {
        "noncommercial_net": (
            "noncommercial_positions_long_all",
            "noncommercial_positions_short_all",
        ),
        "commercial_net": ("commercial_positions_long_all", "commercial_positions_short_all"),
    },
)
DISAGGREGATED = CotReport(
    "cot_disagg",
    "fut_disagg_txt_{year}.zip",
    {
        "managed_money_net": ("m_money_positions_long_all", "m_money_positions_short_all"),
        "producer_net": ("prod_merc_positions_long_all", "prod_merc_positions_short_all"),
    },
)
REPORTS = {"legacy": LEGACY, "disaggregated": DISAGGREGATED}


def normalise(column: str) -> str:
    """'Noncommercial Positions-Long (All)' -> 'noncommercial_positions_long_all'."""
    return re.sub(r"[^a-z0-9]+", "_", column.lower()).strip("_")


def parse_cot_text(text: str, report: CotReport) -> pl.DataFrame:
    """Series rows (SERIES_SCHEMA) for the tracked markets of one COT text file."""
    raw = pl.read_csv(io.StringIO(text), infer_schema=False, truncate_ragged_lines=True)
    raw = raw.rename({c: normalise(c) for c in raw.columns})
    needed = ["cftc_contract_market_code", "as_of_date_in_form_yymmdd", "open_interest_all"]
    needed += [c for pair in report.nets.values() for c in pair]
    for column in needed:
        if column not in raw.columns:
            raise SchemaError(f"cftc {report.dataset}: missing column {column!r}")
    raw = raw.with_row_index("row").with_columns(
        pl.col("cftc_contract_market_code").str.strip_chars()
    )
    raw = raw.filter(pl.col("cftc_contract_market_code").is_in(list(MARKETS)))
    rows: list[tuple[str, date, float, object]] = []
    for record in raw.iter_rows(named=True):
        market = MARKETS[record["cftc_contract_market_code"]]
        as_of = _as_of(record["as_of_date_in_form_yymmdd"], report, record["row"])
        known = cot_release(as_of)
        values = {"open_interest": _number(record, "open_interest_all", report)}
        for name, (long_col, short_col) in report.nets.items():
            long_ = _number(record, long_col, report)
            short = _number(record, short_col, report)
            values[name] = long_ - short
        rows.extend((f"{market}.{k}", as_of, v, known) for k, v in values.items())
    frame = pl.DataFrame(
        rows, schema=["series", "period", "value", "knowledge_time"], orient="row"
    ).with_columns(
        pl.lit(report.dataset).alias("dataset"),
        pl.col("period").cast(pl.Date),
        pl.col("value").cast(pl.Float64),
        pl.col("knowledge_time").cast(pl.Datetime("us", "UTC")),
    )
    frame = frame.select(list(SERIES_SCHEMA)).sort("series", "period")
    validate_frame(frame, SERIES_SCHEMA, f"cftc {report.dataset}")
    return frame


def _as_of(raw: str | None, report: CotReport, row: int) -> date:
    text = (raw or "").strip()
    if not re.fullmatch(r"\d{6}", text):
        raise SchemaError(
            f"cftc {report.dataset}: field 'As_of_Date_In_Form_YYMMDD' is {raw!r} in row {row}"
        )
    yy, mm, dd = int(text[:2]), int(text[2:4]), int(text[4:])
    year = 1900 + yy if yy >= 86 else 2000 + yy  # COT files start in 1986
    return date(year, mm, dd)


def _number(record: dict, column: str, report: CotReport) -> float:
    raw = (record[column] or "").strip()
    try:
        return float(raw)
    except ValueError:
        raise SchemaError(
            f"cftc {report.dataset}: field {column!r} is {raw!r} in row {record['row']}"
        ) from None


def read_cot_zip(content: bytes, report: CotReport) -> pl.DataFrame:
    """Parse the one text/CSV member of a COT history zip."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except zipfile.BadZipFile:
        raise SchemaError(f"cftc {report.dataset}: download is not a zip file") from None
    members = [n for n in archive.namelist() if n.lower().endswith((".txt", ".csv"))]
    if not members:
        raise SchemaError(f"cftc {report.dataset}: zip holds no .txt/.csv file")
    text = archive.read(members[0]).decode("latin-1")
    return parse_cot_text(text, report)


class CftcProvider:
    """COT legacy + disaggregated futures-only reports for the eight tracked markets."""

    name = "cftc"
    kind = "series"
    overlap_days = 21
    datasets = (LEGACY.dataset, DISAGGREGATED.dataset)

    def __init__(self, policy: HttpPolicy | None = None) -> None:
        self.url = base_url("cftc", CFTC_URL) + "/files/dea/history/"
        self._http = HttpSource("cftc", policy or HttpPolicy(min_interval_s=1.0, timeout_s=120))

    def close(self) -> None:
        """Release connections."""
        self._http.close()

    def fetch(self, since: date | None, until: date | None) -> pl.DataFrame:
        """Both reports for every year touching since..until (first year: 2010 if None)."""
        first = (since or date(2010, 1, 1)).year
        last = (until or date.today()).year
        frames = []
        for report in (LEGACY, DISAGGREGATED):
            for year in range(first, last + 1):
                url = self.url + report.zip_name.format(year=year)
                frame = read_cot_zip(self._http.get(url).content, report)
                log.info(
                    "event=cot_fetched report=%s year=%d rows=%d", report.dataset, year, len(frame)
                )
                frames.append(frame)
        frame = pl.concat(frames) if frames else pl.DataFrame(schema=SERIES_SCHEMA)
        if since is not None:
            frame = frame.filter(pl.col("period") >= since)
        if until is not None:
            frame = frame.filter(pl.col("period") <= until)
        return frame

"""Loopback fake of the CFTC COT history downloads: /files/dea/history/<report zip>."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from tests.fakes.loopback import LoopbackServer

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
LEGACY_TEXT = (FIXTURES / "cot_legacy_annual_sample.txt").read_text()
DISAGG_TEXT = (FIXTURES / "cot_disagg_f_year_sample.txt").read_text()


def cot_zip(member: str, text: str) -> bytes:
    """A zip holding one text file, as the CFTC publishes them."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, text)
    return buffer.getvalue()


def cftc_fake(
    year: int = 2021, legacy: str = LEGACY_TEXT, disagg: str = DISAGG_TEXT
) -> LoopbackServer:
    """Serves deacot{year}.zip (annual.txt) and fut_disagg_txt_{year}.zip (f_year.txt)."""
    files = {
        f"/files/dea/history/deacot{year}.zip": cot_zip("annual.txt", legacy),
        f"/files/dea/history/fut_disagg_txt_{year}.zip": cot_zip("f_year.txt", disagg),
    }
    return LoopbackServer(
        routes={
            path: (lambda q, b=body: (200, "application/zip", b)) for path, body in files.items()
        }
    )

"""季点评 on the web console's 通报 page: the quarter's review with its trend lines, its link to the quarter
before, and the workbook with the 季度趋势 sheet, the same as the office group gets."""

from __future__ import annotations

import io

from openpyxl import load_workbook

from bot.reports.render import TREND_SHEET
from tests.reports.test_quarter import Q3, Q4, Q4_TEXT, record
from tests.web.conftest import VIEWER_ID


def test_the_quarter_page_shows_the_review_and_offers_its_workbook(served):
    record(served.engine, Q3 + Q4)
    c = served.sign_in(VIEWER_ID)
    page = c.get("/reports", params={"kind": "quarter", "day": "2026-11-26"}).text
    assert "反诈预警转发季点评（2026年第4季度）" in page
    for line in Q4_TEXT[1:]:
        assert line in page
    assert 'href="/reports?kind=quarter&amp;day=2026-07-01" id="previous">上一季' in page
    assert 'href="/reports/report.xlsx?kind=quarter&amp;day=2026-10-01"' in page
    r = c.get("/reports/report.xlsx", params={"kind": "quarter", "day": "2026-10-01"})
    assert r.status_code == 200
    sheet = load_workbook(io.BytesIO(r.content))[TREND_SHEET]
    assert [c.value for c in sheet[2]][1:] == ["城关镇", "镇街", 2, 2, 0, 1.0, 2, 1, 1, 0.5, 50.0, "↑"]
    png = c.get("/reports/chart.png", params={"kind": "quarter", "day": "2026-10-01"})
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")

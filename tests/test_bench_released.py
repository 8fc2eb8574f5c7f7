"""bench.released (issue 26, item 4) on the converted official-format fixture: every request is timed, the
latent map's extrapolation is the measured parts summed, and bench.report renders the section with the goals."""

from __future__ import annotations

import pytest

from bench import released, report
from test_app_official import convert  # noqa: E402


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    folder = convert(tmp_path_factory.mktemp("released") / "tiny-official")
    measured = released.measure(folder, repeats=2, skip_200=False, map_points=30)
    return measured | {"folder_mb": 3.0, "repeats": 2, "command": "python -m bench.released",
                       "machine": {"cpu": "test CPU", "cpu_count": 2, "torch": "2.13.0", "loadavg_1min_before": 0.3,
                                   "loadavg_1min_after": 1.5}}


def test_every_request_is_timed(result):
    rows = result["rows"]
    assert list(rows) == ["load", "generate 4 x 10 DPM-Solver++", "generate 4 x 25 SDE", "generate 4 x 50 SDE",
                          "generate 4 x 200 SDE (the paper's setting)",
                          "trajectory 1 x 10 DPM-Solver++ (streamed, every step decoded)", "trajectory: first step shown",
                          "interpolate 8 points (slerp)", "latent map: encode 16 passages",
                          "latent map: UMAP fit, 30 points (one run)"]
    assert len(rows["generate 4 x 25 SDE"]["runs_s"]) == 2 and len(rows["generate 4 x 200 SDE (the paper's setting)"]["runs_s"]) == 1
    assert all(row["median_s"] > 0 for row in rows.values())
    assert rows["trajectory: first step shown"]["median_s"] < rows[
        "trajectory 1 x 10 DPM-Solver++ (streamed, every step decoded)"]["median_s"]
    assert result["peak_rss_mb"] > 100


def test_latent_map_extrapolation_is_the_measured_parts_summed(result):
    rows = result["rows"]
    per_text = rows["latent map: encode 16 passages"]["median_s"] / 16
    per_sample = rows["generate 4 x 10 DPM-Solver++"]["median_s"] / 4
    fit = rows["latent map: UMAP fit, 30 points (one run)"]["median_s"]
    assert result["latent_map_extrapolated_s"]["600 passages + 200 samples"] == pytest.approx(
        600 * per_text + 200 * per_sample + fit)


def test_report_section_states_the_goals(result):
    text = report.released_section(result)
    assert text.startswith("`python -m bench.released`: a pipeline of the released shapes")
    assert "4 samples at 10 DPM-Solver++ steps <= 3 s: **" in text and "(met)" in text
    assert "| generate 4 x 200 SDE (the paper's setting) |" in text and "The machine was otherwise idle" in text
    busy = result | {"machine": result["machine"] | {"loadavg_1min_before": 4.5}}
    assert "**The machine was shared**" in report.released_section(busy)
    assert report.released_section(None) == "No results yet: run `python -m bench.released`.\n"

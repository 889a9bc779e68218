"""Numbers and durations as tables and the command line show them."""

from __future__ import annotations

from traceviewer.core.fmt import duration_ms, number


def test_number_separates_thousands_and_drops_a_whole_floats_point():
    assert [number(v) for v in (0, 999, 1204, 1_234_567, 2.0, 0.75, 12345.678901, -4321,
                                None)] == \
        ["0", "999", "1,204", "1,234,567", "2", "0.75", "12,345.6789", "-4,321", ""]


def test_long_durations_separate_thousands_of_minutes():
    assert duration_ms(850) == "850 ms"
    assert duration_ms(125_000) == "2 min 5 s"
    assert duration_ms(75_000_000) == "1,250 min 0 s"

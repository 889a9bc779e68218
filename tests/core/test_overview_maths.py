"""The Overview's chart maths, without Qt: ranges in round steps, estimates no finer than known."""

import pytest

from traceviewer.core.stats import nice_ceiling, rounded_estimate


@pytest.mark.parametrize(("value", "ceiling"), [
    (0, 1.0), (-3, 1.0), (1, 1.0), (7, 8.0), (8.1, 10.0), (101, 120.0), (0.013, 0.015),
    (2_400, 2_500.0), (1e9, 1e9)])
def test_a_range_ends_at_the_first_round_step_at_or_above_the_highest_value(value, ceiling):
    assert nice_ceiling(value) == pytest.approx(ceiling)


@pytest.mark.parametrize(("estimate", "shown"), [
    (43_308, 43_000), (1_234, 1_200), (150, 150), (99, 99), (0, 0), (1_250_001, 1_300_000)])
def test_an_estimated_total_keeps_two_significant_digits(estimate, shown):
    assert rounded_estimate(estimate) == shown

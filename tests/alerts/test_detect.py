"""Traffic judged against the site's own weekly pattern (`pixel.server.alerts.detect`), on generated data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from pixel.server.alerts.detect import Rule, judge, windows
from tests.alerts.traffic import NOW, hourly

DROP_FROM = NOW.replace(hour=9, minute=0)


def test_normal_weekly_pattern_does_not_alert() -> None:
    # A quiet Wednesday (a quarter of Tuesday's traffic) is this site's normal: compared with the day before
    # it would be a 75 % drop; compared with its own previous Wednesdays it is as usual.
    verdict = judge(hourly(1), "shop.example", NOW)
    assert verdict.kind == "normal", verdict
    assert not verdict.alerting
    assert verdict.window_start == "2024-03-20T09:00Z" and verdict.window_end == "2024-03-20T15:00Z"
    assert len(verdict.baseline) == 4 and all(30 <= b <= 70 for b in verdict.baseline)


def test_planted_drop_alerts() -> None:
    # Tuesday's usual traffic, cut to a tenth from 09:00 on the busy day: judged on Tuesday afternoon.
    now = NOW - timedelta(days=1)
    counts = {h: n for h, n in hourly(2, DROP_FROM - timedelta(days=1), 0.1).items() if h < now}
    verdict = judge(counts, "shop.example", now)
    assert verdict.kind == "drop", verdict
    assert verdict.alerting
    assert verdict.expected is not None and 150 <= verdict.expected <= 230
    assert verdict.observed <= 0.15 * verdict.expected
    assert verdict.message.startswith("shop.example: traffic drop, ")
    assert "usually has about" in verdict.message


def test_planted_spike_alerts() -> None:
    verdict = judge(hourly(3, DROP_FROM, 5.0), "shop.example", NOW)
    assert verdict.kind == "spike", verdict


def test_quiet_site_is_never_down() -> None:
    # A site with a visit or two per hour that drops to nothing is not an outage.
    counts = {h: (0 if h >= DROP_FROM else 1) for h in hourly(4)}
    assert judge(counts, "tiny.example", NOW).kind == "normal"


def test_quiet_site_does_not_spike_on_a_few_visits() -> None:
    counts = {h: (3 if h >= DROP_FROM else 1 if h.hour % 6 == 0 else 0) for h in hourly(4)}
    verdict = judge(counts, "tiny.example", NOW)
    assert (verdict.observed, verdict.expected, verdict.kind) == (18, 1.0, "normal")


def test_new_site_is_not_judged() -> None:
    counts = {h: n for h, n in hourly(5).items() if h >= NOW - timedelta(days=15)}
    verdict = judge(counts, "new.example", NOW)
    assert verdict.kind == "unknown"
    assert verdict.expected is None and verdict.z is None
    assert "not enough history" in verdict.message


def test_windows_follow_local_time_across_dst() -> None:
    # Berlin moved to summer time on 2024-03-31: the week before, the same local hours are an hour later in UTC.
    now = datetime(2024, 4, 2, 15, 0, tzinfo=UTC)
    spans = windows(now, "Europe/Berlin", Rule(weeks=1))
    assert spans[0] == (datetime(2024, 4, 2, 9, tzinfo=UTC), datetime(2024, 4, 2, 15, tzinfo=UTC))
    assert spans[1] == (datetime(2024, 3, 26, 10, tzinfo=UTC), datetime(2024, 3, 26, 16, tzinfo=UTC))


def test_current_partial_hour_is_left_out() -> None:
    counts = hourly(6)
    counts[NOW.replace(minute=0)] = 10_000  # the hour in progress
    assert judge(counts, "shop.example", NOW).kind == "normal"


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 10_000),
    hours_back=st.integers(0, 24 * 14),
    scale=st.floats(0.5, 20.0),
)
def test_pattern_as_usual_never_alerts(seed: int, hours_back: int, scale: float) -> None:
    """Any day and hour, any size of site: traffic that follows its own pattern (within the noise) is normal."""
    now = NOW - timedelta(hours=hours_back)
    base = hourly(seed)
    counts = {h: round(n * scale) for h, n in base.items() if h < now.replace(minute=0)}
    assert judge(counts, "shop.example", now).kind in ("normal", "unknown")


@settings(max_examples=60, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000), day=st.sampled_from([0, 1, 3, 4]), factor=st.floats(0.0, 0.3))
def test_busy_day_cut_to_under_a_third_always_alerts(seed: int, day: int, factor: float) -> None:
    now = datetime(2024, 3, 11, 15, 30, tzinfo=UTC) + timedelta(days=day)
    counts = hourly(seed, now.replace(hour=9, minute=0), factor)
    counts = {h: n for h, n in counts.items() if h < now.replace(minute=0)}
    assert judge(counts, "shop.example", now).kind == "drop"


def test_utc_keys_only() -> None:
    verdict = judge({}, "empty.example", NOW.astimezone(UTC))
    assert verdict.kind == "unknown" and verdict.observed == 0

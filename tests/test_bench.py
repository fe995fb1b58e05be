"""A design in bench/ that silently stopped delivering would make `make bench` print nonsense.
`make test` sends a small 08:00 wave through both of the wave's designs and checks the
dashboard bench; the urgent and fairness designs, which start more processes (about 45 s), are
checked by `make bench` before it measures (marker `bench`; `pytest -m bench` runs them)."""

import argparse

import pytest

from bench import dashboard, fairness, urgent, wave

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_both_designs_deliver_a_small_wave_exactly_once(tmp_path):
    ours = wave.project_wave(tmp_path, 200)
    baseline = wave.baseline_wave(tmp_path, 200)
    for doc in (ours, baseline):
        assert (doc["received"], doc["lost"], doc["duplicates"]) == (200, 0, 0), doc


def _options(module, **changes):
    """A benchmark's own options (its defaults), some changed: what `python -m bench` passes."""
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return argparse.Namespace(**{**vars(parser.parse_args([])), **changes})


@pytest.mark.bench
def test_urgent_answers_are_found_once_each_through_both_designs(tmp_path):
    """Signed red-flag replies over HTTP during a small wave: each reply's on-call alert and
    urgent advice are found at the fake, once, to their own recipients."""
    options = _options(urgent, count=300, replies=2, first=0.5, every=0.3, timeout=60)
    ours = urgent.project_urgent(tmp_path, options, rate=100)
    baseline = urgent.baseline_urgent(tmp_path, options)
    for doc in (ours, baseline):
        assert (doc["replies"], doc["unanswered"], doc["duplicates"],
                doc["wrong_recipient"]) == (2, 0, 0, 0), doc
        assert all(len(values) == 2 for values in doc["latency_s"].values()), doc


@pytest.mark.bench
def test_fairness_sees_both_clinics_texts_through_both_designs(tmp_path):
    options = _options(fairness, count=300, b_count=20, rate=100, offset=0.5, after=0.2,
                       timeout=60)
    for doc in (fairness.project_fairness(tmp_path, options),
                fairness.baseline_fairness(tmp_path, options)):
        assert (doc["b_delivered"], doc["duplicates"], doc["unknown"]) == (20, 0, 0), doc
        assert doc["a_sent"] > 0, doc


def test_the_dashboard_bench_shows_one_page_of_the_open_escalations_and_their_counts():
    """Its figures are printed, never asserted; what is checked is that it measured the page."""
    doc = dashboard.one_run(clients=60, open_escalations=45, requests=1)
    assert (doc["status"], doc["rows_shown"]) == (200, 20), doc
    assert doc["counts"] == {"urgent": "6", "concern": "39", "unanswered": "11"}, doc

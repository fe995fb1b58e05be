"""`make test` does not run bench/, but a design there that silently stopped delivering would
make `make bench` print nonsense: a small 08:00 wave through both of its designs."""

import pytest

from bench import wave

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_both_designs_deliver_a_small_wave_exactly_once(tmp_path):
    ours = wave.project_wave(tmp_path, 200)
    baseline = wave.baseline_wave(tmp_path, 200)
    for doc in (ours, baseline):
        assert (doc["received"], doc["lost"], doc["duplicates"]) == (200, 0, 0), doc

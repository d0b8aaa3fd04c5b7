"""Durations as the Docker provider reads them back (components.durations).

The expected strings are Go's own: `time.Duration.String()` and the provider's
shortDur (its four lines, resource_docker_service_structures.go) printed by Go
1.26 for these values, not computed by the code under test."""

import pytest

from components.durations import container_duration, service_duration

GO_PRINTED = [  # (seconds, time.Duration.String(), shortDur)
    (0, "0s", "0s"), (2, "2s", "2s"), (15, "15s", "15s"), (59, "59s", "59s"),
    (60, "1m0s", "1m"), (61, "1m1s", "1m1s"), (90, "1m30s", "1m30s"), (120, "2m0s", "2m"),
    (180, "3m0s", "3m"), (600, "10m0s", "10m"), (3600, "1h0m0s", "1h"),
    (3661, "1h1m1s", "1h1m1s"), (7200, "2h0m0s", "2h"), (86400, "24h0m0s", "24h"),
]


@pytest.mark.parametrize("seconds, go_string, short", GO_PRINTED)
def test_durations_are_written_as_the_provider_reads_them_back(seconds, go_string, short):
    assert container_duration(seconds) == go_string
    assert service_duration(seconds) == short


def test_a_negative_duration_is_refused():
    with pytest.raises(ValueError, match="-1"):
        container_duration(-1)

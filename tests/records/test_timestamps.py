"""Timestamps as the tap writes them: four-digit years, UTC, microseconds."""

from __future__ import annotations

import pytest

from tap_usersnap.records import format_timestamp, normalise_timestamp, parse_timestamp


@pytest.mark.parametrize(
    ("given", "formatted"),
    [
        ("0001-01-01", "0001-01-01T00:00:00.000000Z"),
        ("0999-12-31T23:59:59.5Z", "0999-12-31T23:59:59.500000Z"),
        ("9999-12-31T23:59:59.999999+00:00", "9999-12-31T23:59:59.999999Z"),
    ],
)
def test_every_year_is_written_with_four_digits(given: str, formatted: str) -> None:
    assert format_timestamp(parse_timestamp(given)) == formatted
    assert normalise_timestamp(given) == formatted


def test_normalise_timestamp_forms() -> None:
    assert normalise_timestamp("2024-01-02T03:04:05Z") == "2024-01-02T03:04:05.000000Z"
    assert normalise_timestamp("2024-01-02T03:04:05") == "2024-01-02T03:04:05.000000Z"
    assert normalise_timestamp("2024-01-02T00:00:00-05:30") == "2024-01-02T05:30:00.000000Z"
    # Normalised, string order is time order (a tenth of a second is after 2 microseconds).
    tenth = normalise_timestamp("2024-01-02T03:04:05.1Z")
    micro = normalise_timestamp("2024-01-02T03:04:05.000002Z")
    assert tenth == "2024-01-02T03:04:05.100000Z"
    assert micro < tenth


def test_forms_of_the_api_length_are_normalised_not_passed_through() -> None:
    """A week date is the API form's length: it must come out in the bookmark format."""
    assert normalise_timestamp("2024-W01-1T10:00:00.000000Z") == "2024-01-01T10:00:00.000000Z"
    with pytest.raises(ValueError, match="Invalid isoformat"):
        normalise_timestamp("2024-01-01T10:00:00.0+0100Z")  # an offset and a Z: no instant


def test_lower_case_letters_and_spaces_around_are_read() -> None:
    """RFC 3339 allows a lower-case t and z."""
    assert normalise_timestamp(" 2024-01-01t10:00:00z ") == "2024-01-01T10:00:00.000000Z"

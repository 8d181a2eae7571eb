"""STIR/SHAKEN parameters of a lookup, folded into one outcome."""

from __future__ import annotations

import pytest

from reputation.attestation import call_attestation
from reputation.errors import BadRequest


@pytest.mark.parametrize(
    ("query", "outcome"),
    [
        ({}, None),
        ({"attestation": ""}, None),
        ({"attestation": "A"}, "A"),
        ({"attestation": "b"}, "B"),
        ({"attestation": " C "}, "C"),
        ({"attestation": "none"}, "none"),
        ({"attestation": "NONE"}, "none"),
        ({"verstat": "TN-Validation-Passed"}, "A"),
        ({"verstat": "tn-validation-passed"}, "A"),
        ({"verstat": "TN-Validation-Passed-B"}, "B"),
        ({"verstat": "TN-Validation-Passed-C"}, "C"),
        ({"verstat": "TN-Validation-Failed"}, "failed"),
        ({"verstat": "No-TN-Validation"}, "none"),
        ({"verstat": "TN-Validation-Passed", "attestation": "C"}, "C"),
        ({"verstat": "TN-Validation-Passed-A", "attestation": "B"}, "B"),
        ({"verstat": "TN-Validation-Failed", "attestation": "A"}, "failed"),
        ({"verstat": "No-TN-Validation", "attestation": "A"}, "none"),
    ],
)
def test_outcome(query: dict[str, str], outcome: str | None) -> None:
    assert call_attestation(query) == outcome


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"attestation": "D"}, "invalid_attestation"),
        ({"attestation": "full"}, "invalid_attestation"),
        ({"verstat": "passed"}, "invalid_verstat"),
        ({"verstat": "TN-Validation-Passed-D"}, "invalid_verstat"),
    ],
)
def test_unknown_values_are_refused(query: dict[str, str], code: str) -> None:
    with pytest.raises(BadRequest) as caught:
        call_attestation(query)
    assert caught.value.code == code

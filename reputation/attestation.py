"""What the carrier says about a call's caller ID: its STIR/SHAKEN outcome.

A carrier that verified the call passes either the attestation level signed
in the PASSporT (ATIS-1000074 / RFC 8588: ``A`` full, ``B`` partial, ``C``
gateway; ``none`` when the call carried no signature) or the ``verstat``
value its verification service put in the P-Asserted-Identity (3GPP TS 24.229:
``TN-Validation-Passed``, ``TN-Validation-Failed``, ``No-TN-Validation``).
Both are folded into one outcome: ``A``, ``B``, ``C``, ``none`` or ``failed``.

A plain ``TN-Validation-Passed`` does not say the level; it is taken as full
attestation unless ``attestation`` says otherwise (some networks send the
level as ``TN-Validation-Passed-A``/``-B``/``-C``, which is read too).
"""

from __future__ import annotations

from collections.abc import Mapping

from reputation.errors import BadRequest
from reputation.verdict import FAILED, FULL_ATTESTATION

NONE = "none"
_ATTESTATIONS = {"a": "A", "b": "B", "c": "C", "none": NONE}
_PASSED = "tn-validation-passed"
_VERSTATS = {
    _PASSED: FULL_ATTESTATION,
    _PASSED + "-a": "A",
    _PASSED + "-b": "B",
    _PASSED + "-c": "C",
    "tn-validation-failed": FAILED,
    "no-tn-validation": NONE,
}


def call_attestation(query: Mapping[str, str]) -> str | None:
    """The outcome given with a lookup (``?attestation=`` / ``?verstat=``); None: not given."""
    attestation = _read(query, "attestation", _ATTESTATIONS)
    verstat = _read(query, "verstat", _VERSTATS)
    if verstat is None:
        return attestation
    if verstat == FAILED or attestation is None:
        return verstat
    if query["verstat"].strip().lower() == _PASSED:
        return attestation  # the level, which a plain "passed" does not carry
    return verstat if attestation == verstat else _weakest(attestation, verstat)


def _read(query: Mapping[str, str], name: str, values: Mapping[str, str]) -> str | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    value = values.get(raw.strip().lower())
    if value is None:
        raise BadRequest(
            f"'{name}' must be one of {_SHOWN[name]}.", code=f"invalid_{name}", field=name
        )
    return value


_SHOWN = {
    "attestation": "A, B, C, none",
    "verstat": "TN-Validation-Passed (or -A, -B, -C), TN-Validation-Failed, No-TN-Validation",
}


_ORDER = ("A", "B", "C", NONE, FAILED)


def _weakest(one: str, other: str) -> str:
    """Of two outcomes that disagree, the one that vouches for the caller least."""
    return max(one, other, key=_ORDER.index)

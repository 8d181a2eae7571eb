"""Reporter identities and phone numbers shown to people: kept hashed, shown masked."""

from __future__ import annotations

import hashlib
import hmac
import re

import phonenumbers

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
# National digits shown in clear at each end of a masked number.
SHOWN_DIGITS = 2


def reporter_hash(key: bytes, reporter: str | None, channel: str) -> bytes:
    """The identity of whoever made a report, as HMAC-SHA256 under the server's key.

    A reporter who gave their number is identified by it, so that they count
    once per reported number. Anonymous reports of one channel share one
    identity: many anonymous reports weigh as much as one reporter.
    """
    identity = reporter if reporter is not None else f"anonymous:{channel}"
    return hmac.new(key, identity.encode(), hashlib.sha256).digest()


def mask(e164: str) -> str:
    """A number as an analyst may see it: ``+84912345678`` -> ``+84 91x xxx x78``.

    The country code, the first two and the last two digits of the national
    number stay (enough to tell a mobile from a landline, or two reporters
    apart in a list); the rest becomes ``x``, in groups of three.
    """
    if not _E164.fullmatch(e164):
        raise ValueError("mask() takes an E.164 number")
    country = _country_code(e164)
    national = e164[1 + len(country) :]
    hidden = max(0, len(national) - 2 * SHOWN_DIGITS)
    if hidden < SHOWN_DIGITS:  # too short to show both ends: show only the last digits
        shown = "x" * (len(national) - SHOWN_DIGITS) + national[-SHOWN_DIGITS:]
    else:
        shown = national[:SHOWN_DIGITS] + "x" * hidden + national[-SHOWN_DIGITS:]
    groups = [shown[i : i + 3] for i in range(0, len(shown), 3)]
    if len(groups) > 1 and len(groups[-1]) == 1:  # no lone digit at the end: 3-3-4
        groups[-2:] = [groups[-2] + groups[-1]]
    return f"+{country} " + " ".join(groups)


def _country_code(e164: str) -> str:
    """The country code of an E.164 number, read as ``phonenumbers.parse`` reads it.

    Country codes are prefix-free: the first 1 to 3 digits that name one are
    it (a table lookup, where a full parse costs about 15 µs).
    """
    for digits in (1, 2, 3):
        if int(e164[1 : 1 + digits]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return e164[1 : 1 + digits]
    raise ValueError("mask() takes an E.164 number of a known country code")


def pseudonym(identity_hash: bytes) -> str:
    """A short stable name for a reporter, shown to analysts instead of any number.

    It is a prefix of the keyed hash, so it tells whether two reports came
    from the same person without revealing who they are.
    """
    return "r-" + identity_hash[:5].hex()

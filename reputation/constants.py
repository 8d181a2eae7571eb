"""Named constants of the service, each with the reason for its value."""

from __future__ import annotations

# Where a report came from. Metrics are labelled by these, so the set is closed.
CHANNELS = ("sms", "call_center", "app", "carrier", "api")

# What a report says about the number. Closed for the same reason.
CATEGORIES = ("scam", "impersonation", "spam_call", "spam_sms", "telemarketing", "other")
DEFAULT_CATEGORY = "scam"

# Longest report content kept, in characters (the SMS channel cuts there too).
MAX_CONTENT_CHARS = 1000

# Numbers in one POST /v1/lookups.
MAX_BATCH_NUMBERS = 1000

# Longest Idempotency-Key accepted; UUIDs and ULIDs fit easily.
MAX_IDEMPOTENCY_KEY_CHARS = 200

# Request bodies larger than this are refused before they are read.
MAX_BODY_BYTES = 64 * 1024

# Lookup answers a node keeps ready at start-up, at most (the most reported numbers).
MAX_WARM_NUMBERS = 10_000

# Channel for LISTEN/NOTIFY wake-ups of the change feed.
NOTIFY_CHANNEL = "reputation_changes"

"""Named constants of the service, each with the reason for its value."""

from __future__ import annotations

# What an API key may do; each handler declares the roles it allows (auth.requires).
ROLES = ("lookup", "report", "sms_gateway", "analyst", "admin")

# Where a report came from. Metrics are labelled by these, so the set is closed.
# "import": lists loaded in bulk by an operator (`reputation import`).
IMPORT_CHANNEL = "import"
CHANNELS = ("sms", "call_center", "app", "carrier", "api", IMPORT_CHANNEL)

# What a report says about the number. Closed for the same reason.
CATEGORIES = ("scam", "impersonation", "spam_call", "spam_sms", "telemarketing", "other")
DEFAULT_CATEGORY = "scam"

# Longest report content kept, in characters (the SMS channel cuts there too).
MAX_CONTENT_CHARS = 1000

# Longest SMS text read: ten concatenated segments (1530 GSM-7 characters, 670
# in UCS-2). A gateway that sends more gets the rest dropped, which bounds the
# cost of reading a message; the content kept is shorter still.
MAX_SMS_TEXT_CHARS = 1600

# Idempotency keys of reports made by SMS are this prefix + the gateway's
# message_id; API clients may not use it.
SMS_IDEMPOTENCY_PREFIX = "sms:"
# Idempotency-Key given to a report without one when it goes to the local spool,
# so that replaying it twice (after a crash) keeps it once.
SPOOL_IDEMPOTENCY_PREFIX = "spool:"
# Seconds a client is told to wait (Retry-After) when a write cannot be taken.
RETRY_AFTER_SECONDS = 5
# Longest gateway message_id accepted (gateways use UUIDs or numeric ids).
MAX_MESSAGE_ID_CHARS = 200

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

# Channel for LISTEN/NOTIFY wake-ups when API keys are created or revoked.
API_KEYS_CHANNEL = "reputation_api_keys"

# Longest URL (path and query) answered; lookups need well under 300 characters.
# Longer ones up to MAX_REQUEST_LINE_BYTES get a JSON 414; beyond that the HTTP
# parser drops the connection with a plain 400 before any of our code runs.
MAX_URL_CHARS = 2048
MAX_REQUEST_LINE_BYTES = 8190
# Longest single header line and most headers per request (HTTP parser limits:
# bearer keys and gateway signatures are under 100 bytes, browsers send ~15 headers).
MAX_HEADER_BYTES = 8190
MAX_HEADERS = 64

# After refusing a request whose body is still coming (413, 408), the server
# reads and drops the rest for at most this long, so that the client can see
# the answer before the connection closes, then hangs up.
LINGER_SECONDS = 1.0

# Rate-limit buckets a node keeps per reporter number or client address (many;
# the least recently used are forgotten past this). API keys each have one.
MAX_REPORTER_BUCKETS = 100_000

# What an analyst can say about a number. "reported" is the automatic state.
STATUSES = ("reported", "confirmed", "cleared", "allowlisted")

# Kinds of change-log rows (``changes.kind``), each a reason a lookup answer moved:
# a report, an analyst's status change (allowlist edits included), a protected
# list edit, decay crossing a verdict threshold, a re-judgement after the verdict
# settings changed.
CHANGE_REPORT, CHANGE_STATUS, CHANGE_PROTECTED, CHANGE_DECAY, CHANGE_POLICY = (
    "report",
    "status",
    "protected",
    "decay",
    "policy",
)

# Half-life of the "heat" activity figure, in days: short, so that heat says
# what is happening this week (the verdict's own half-life is a setting).
HEAT_HALF_LIFE_DAYS = 7.0

# Longest analyst note, appeal contact and appeal reason kept, in characters.
MAX_NOTE_CHARS = 1000
MAX_CONTACT_CHARS = 200
MAX_REASON_CHARS = 2000
# Longest protected-number name (an organisation's name and line).
MAX_NAME_CHARS = 200

# Page sizes of the listings (review queue, reports, history, appeals).
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000

# Numbers re-judged per transaction by the decay sweep.
SWEEP_BATCH = 500

# Least time between two reads of the change log: notifications arriving faster
# are served by one read, which bounds the load each node puts on PostgreSQL.
FEED_MIN_READ_INTERVAL = 0.01

# Changes handed to the subscribers at once when a node catches up a long tail.
FEED_BATCH_SIZE = 10_000

# How often a node records the feed position it has applied (pruning waits for it).
FEED_HEARTBEAT_SECONDS = 10.0

# A node silent for this long no longer holds back pruning of the change log.
FEED_NODE_TIMEOUT_SECONDS = 60.0

# How often each node prunes the change log (cheap: an indexed range delete).
FEED_PRUNE_SECONDS = 60.0

# How often the LISTEN connection is checked with a query: a half-open TCP
# connection (a network cut, not a closed socket) reports no error by itself.
LISTEN_CHECK_SECONDS = 5.0

# Pauses between attempts to reconnect to PostgreSQL, growing from min to max.
RECONNECT_MIN_SECONDS = 0.1
RECONNECT_MAX_SECONDS = 5.0

# Hash-prefix lengths (hex characters of the number's SHA-256) that /v1/ranges
# accepts: 5 (the finest, about 330 possible Vietnamese mobile numbers per
# range), 4 (about 5,300) or 3 (about 85,000). Shorter ones would make the
# answers as large as the export itself.
RANGE_PREFIX_LENGTHS = (3, 4, 5)

# A range answer is padded to hold at least this many entries (then 64, 128,
# ...), and the recommended prefix length is the longest one whose ranges hold
# this many listed numbers on average: "a few dozen".
RANGE_MIN_ENTRIES = 32

# Bytes of encoded range answers (3- and 4-character prefixes) a node keeps ready:
# about a thousand 3-character answers at a million listed numbers.
RANGE_CACHE_BYTES = 48 * 1024 * 1024

# Reports written in one transaction at most (group commit): a commit costs an
# fsync and, with its NOTIFY, holds a lock that serialises every committing
# report; reports arriving meanwhile share the next commit instead. A group is
# written with the same few statements whatever its size, so a large one costs
# less per report; this only bounds the arrays of one statement.
MAX_REPORTS_PER_COMMIT = 256

# Transactions writing reports at once, per process: while one waits for its
# commit (an fsync), the other prepares its group. Fewer writers make larger
# groups, which cost less per report (measured: 8 reports per transaction and
# 0.6-0.8 ms of service CPU per report with one writer, 5.7 and 0.9-1.0 ms
# with four); two keep reports moving when one transaction waits on a lock.
REPORT_WRITERS = 2

# A group of reports that deadlocked with another (PostgreSQL rolled it back)
# is written again this many times before its callers get the error.
REPORT_DEADLOCK_RETRIES = 3

# How often a node looks for spooled records to replay once PostgreSQL is back.
SPOOL_REPLAY_SECONDS = 0.5

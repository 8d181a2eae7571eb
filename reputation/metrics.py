"""The Prometheus metrics analysts read.

Each app gets its own registry (several apps can live in one test process).
Labelled children are bound once here, never per request, and no label ever
carries a phone number: every label value comes from a closed set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from reputation.constants import CATEGORIES, CHANNELS, STATUSES
from reputation.sms import KEYWORDS, SMS_ERRORS
from reputation.verdict import ALLOW, BLOCK, REASONS, WARN

# last_known and fail_open: answered from memory while PostgreSQL was unreachable.
LAYERS = ("bloom", "cache", "database", "last_known", "fail_open")
VERDICTS = (ALLOW, WARN, BLOCK)
# Sub-millisecond buckets: the hot path answers in microseconds, and its target
# (p99 under 20 us) must be readable from the histogram itself.
LATENCY_BUCKETS = (
    0.000_005, 0.000_01, 0.000_015, 0.000_02, 0.000_025, 0.000_05, 0.000_075,
    0.000_1, 0.000_25, 0.000_5,
    0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
)  # fmt: skip
# From a few milliseconds (notified at once) to the poll interval and beyond.
FEED_DELAY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0)


@dataclass(frozen=True)
class NodeGauges:
    """Readings of this node's in-memory state, taken at scrape time."""

    bloom_items: Callable[[], float]
    bloom_capacity: Callable[[], float]
    bloom_fill_ratio: Callable[[], float]
    bloom_false_positive_rate: Callable[[], float]
    cache_entries: Callable[[], float]
    cache_hits: Callable[[], float]
    cache_misses: Callable[[], float]


@dataclass(frozen=True)
class FeedGauges:
    """Readings of this node's change feed and database link, taken at scrape time."""

    listening: Callable[[], float]
    seconds_since_read: Callable[[], float]
    database_up: Callable[[], float]


class _FeedCollector(Collector):
    def __init__(self, gauges: FeedGauges) -> None:
        self.gauges = gauges

    def collect(self) -> Iterator[GaugeMetricFamily]:
        g = self.gauges
        for name, doc, read in (
            (
                "reputation_feed_listening",
                "1 while the LISTEN connection of the change feed is open",
                g.listening,
            ),
            (
                "reputation_feed_seconds_since_read",
                "Seconds since the change log was last read successfully",
                g.seconds_since_read,
            ),
            (
                "reputation_database_up",
                "1 while this node can reach PostgreSQL, 0 while it answers from memory",
                g.database_up,
            ),
        ):
            yield GaugeMetricFamily(name, doc, value=read())


class _NodeCollector(Collector):
    def __init__(self, gauges: NodeGauges) -> None:
        self.gauges = gauges

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        g = self.gauges
        for name, doc, read in (
            ("reputation_bloom_items", "Numbers in the Bloom filter", g.bloom_items),
            ("reputation_bloom_capacity", "Design capacity of the Bloom filter", g.bloom_capacity),
            ("reputation_bloom_fill_ratio", "Share of Bloom filter bits set", g.bloom_fill_ratio),
            (
                "reputation_bloom_false_positive_rate",
                "Estimated false-positive rate of the Bloom filter, from its bits",
                g.bloom_false_positive_rate,
            ),
            ("reputation_cache_entries", "Answers held in the hot cache", g.cache_entries),
        ):
            yield GaugeMetricFamily(name, doc, value=read())
        yield CounterMetricFamily(
            "reputation_cache_hits", "Lookups answered by the hot cache", value=g.cache_hits()
        )
        yield CounterMetricFamily(
            "reputation_cache_misses",
            "Lookups the hot cache could not answer",
            value=g.cache_misses(),
        )


class Metrics:
    """Every metric of one node, registered in its own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.lookups = Counter(
            "reputation_lookups",
            "Lookups answered, by verdict and by the layer that answered",
            ["layer", "verdict"],
            registry=r,
        )
        self.lookup_by = {
            (layer, verdict): self.lookups.labels(layer, verdict)
            for layer in LAYERS
            for verdict in VERDICTS
        }
        self.lookup_seconds = Histogram(
            "reputation_lookup_duration_seconds",
            "Time spent answering one lookup inside the service",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.lookup_errors = Counter(
            "reputation_lookup_errors",
            "Lookups refused because the input is not a usable number, by error code",
            ["code"],
            registry=r,
        )
        self.reports = Counter(
            "reputation_reports",
            "Reports accepted, by channel and category",
            ["channel", "category"],
            registry=r,
        )
        self.report_by = {
            (channel, category): self.reports.labels(channel, category)
            for channel in CHANNELS
            for category in CATEGORIES
        }
        self.reports_rejected = Counter(
            "reputation_reports_rejected",
            "Reports refused, by channel and error code",
            ["channel", "reason"],
            registry=r,
        )
        self.database_errors = Counter(
            "reputation_database_errors",
            "Database calls that failed, by operation",
            ["operation"],
            registry=r,
        )
        self.feed_changes = Counter(
            "reputation_feed_changes", "Changes read from the change log and applied", registry=r
        )
        self.feed_delay = Histogram(
            "reputation_feed_delay_seconds",
            "Time from writing a change to applying it on this node (the cross-node lag)",
            buckets=FEED_DELAY_BUCKETS,
            registry=r,
        )
        self.feed_reconnects = Counter(
            "reputation_feed_reconnects",
            "Times the LISTEN connection of the change feed was lost or could not be opened",
            registry=r,
        )
        self.feed_reloads = Counter(
            "reputation_feed_reloads",
            "Times the node reloaded its state because changes it lacked were gone",
            registry=r,
        )
        self.feed_pruned = Counter(
            "reputation_feed_pruned_changes",
            "Change log rows this node pruned once every live node held them",
            registry=r,
        )
        self.filter_rebuilds = Counter(
            "reputation_bloom_rebuilds",
            "Bloom filters rebuilt from PostgreSQL and swapped in, by reason (full, scheduled)",
            ["reason"],
            registry=r,
        )
        self.filter_snapshots_loaded = Counter(
            "reputation_bloom_snapshots_loaded",
            "Stored Bloom filter snapshots this node started (or reloaded) from",
            registry=r,
        )
        self.filter_snapshots_saved = Counter(
            "reputation_bloom_snapshots_saved",
            "Bloom filter snapshots this node stored for new nodes",
            registry=r,
        )
        self.spool_written = Counter(
            "reputation_spool_written",
            "Records written to the local spool while PostgreSQL was unreachable, by kind",
            ["kind"],
            registry=r,
        )
        self.spool_replayed = Counter(
            "reputation_spool_replayed",
            "Spooled records replayed into PostgreSQL, by kind and outcome "
            "(replayed, refused for good, failed and kept)",
            ["kind", "outcome"],
            registry=r,
        )
        self.spool_refused = Counter(
            "reputation_spool_refused",
            "Records refused with 503 because the spool was full",
            registry=r,
        )
        self.feed_subscriber_errors = Counter(
            "reputation_feed_subscriber_errors",
            "Failures of in-memory state updates driven by the change feed",
            registry=r,
        )

        self.bloom_design_error_rate = Gauge(
            "reputation_bloom_design_error_rate",
            "False-positive rate the Bloom filter is built for (REPUTATION_BLOOM_ERROR_RATE)",
            registry=r,
        )
        self.auth_enabled = Gauge(
            "reputation_auth_enabled",
            "1 when API keys are checked, 0 when authentication is off",
            registry=r,
        )
        self.auth_refused = Counter(
            "reputation_auth_refused",
            "Requests refused by authentication, authorisation or the gateway signature, "
            "by error code",
            ["reason"],
            registry=r,
        )
        self.rate_limited = Counter(
            "reputation_rate_limited",
            "Requests refused by a rate limit, by role and API key id (`reputation keys list`)",
            ["role", "key"],
            registry=r,
        )
        self.reporter_rate_limited = Counter(
            "reputation_reporter_rate_limited",
            "Reports refused because their reporter number sent too many, by channel",
            ["channel"],
            registry=r,
        )
        self.range_answers = Counter(
            "reputation_range_answers",
            "Hash-prefix ranges served (private lookups)",
            registry=r,
        )
        self.exports = Counter(
            "reputation_exports",
            "List exports started, full or delta",
            ["kind"],
            registry=r,
        )
        self.export_entries = Counter(
            "reputation_export_entries",
            "Entries and deletion markers sent by completed exports",
            registry=r,
        )
        self.range_index_entries = Gauge(
            "reputation_range_index_entries",
            "Listed numbers held by the hash-prefix range index",
            registry=r,
        )

        self.verdict_reasons = Counter(
            "reputation_verdict_reasons",
            "Reasons given with lookup verdicts (a verdict may give several)",
            ["reason"],
            registry=r,
        )
        self.verdict_reason = {reason: self.verdict_reasons.labels(reason) for reason in REASONS}
        self.status_changes = Counter(
            "reputation_status_changes",
            "Analyst status changes made on this node, by status before and after",
            ["from_status", "to_status"],
            registry=r,
        )
        self.status_change = {
            (before, after): self.status_changes.labels(before, after)
            for before in STATUSES
            for after in STATUSES
        }
        self.verdicts_decayed = Counter(
            "reputation_verdicts_decayed",
            "Stored verdicts lowered by decay (sweeps run by this node), by verdict after",
            ["verdict"],
            registry=r,
        )
        self.verdict_decayed = {v: self.verdicts_decayed.labels(v) for v in VERDICTS}
        self.open_appeals = Gauge(
            "reputation_open_appeals",
            "Appeals waiting for an analyst (read from the database by the periodic sweep)",
            registry=r,
        )
        self.appeals = Counter(
            "reputation_appeals",
            "Appeals opened and resolved on this node, by outcome",
            ["outcome"],
            registry=r,
        )
        self.appeal_by = {o: self.appeals.labels(o) for o in ("opened", "accepted", "rejected")}
        self.protected_numbers = Gauge(
            "reputation_protected_numbers", "Protected numbers known to this node", registry=r
        )

        # What citizens' messages to 156/5656 became (sms.py, sms_intake.py).
        self.sms_accepted = Counter(
            "reputation_sms_accepted",
            "SMS messages that made a report, by category",
            ["category"],
            registry=r,
        )
        self.sms_accepted_by = {
            category: self.sms_accepted.labels(category) for category in KEYWORDS.values()
        }
        self.sms_rejected = Counter(
            "reputation_sms_rejected",
            "SMS messages that made no report, by reason (error code)",
            ["reason"],
            registry=r,
        )
        self.sms_rejected_by = {code: self.sms_rejected.labels(code) for code in SMS_ERRORS}

    def watch_spool(self, pending: Callable[[], float]) -> None:
        """Expose how many spooled records wait for PostgreSQL."""
        gauge = Gauge(
            "reputation_spool_pending",
            "Records (reports, SMS messages) kept in this node's local spool, waiting for "
            "PostgreSQL",
            registry=self.registry,
        )
        gauge.set_function(pending)

    def watch_feed(self, gauges: FeedGauges) -> None:
        """Expose the change feed's readings."""
        self.registry.register(_FeedCollector(gauges))

    def watch_node(self, gauges: NodeGauges) -> None:
        """Expose the node's filter and cache readings."""
        self.registry.register(_NodeCollector(gauges))

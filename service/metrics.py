"""Prometheus metrics of one app instance (its own registry, so several apps in one process do not clash)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_TOKEN_BUCKETS = (16, 64, 256, 1024, 2048, 4096, 8192, 16384)


@dataclass
class Metrics:
    """Every metric the service exports at ``/metrics``."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter("xalign_requests", "HTTP requests", ["route", "method", "status"], registry=r)
        self.latency = Histogram(
            "xalign_request_seconds", "HTTP request latency", ["route", "method"], buckets=_LATENCY_BUCKETS, registry=r
        )
        self.queue_size = Gauge("xalign_queue_texts", "texts waiting for inference", ["model"], registry=r)
        self.queue_tokens = Gauge("xalign_queue_tokens", "tokens waiting for inference", ["model"], registry=r)
        self.dropped = Counter(
            "xalign_dropped_texts", "queued texts dropped unembedded", ["model", "reason"], registry=r
        )
        self.batch_size = Histogram(
            "xalign_batch_texts", "texts per inference batch", ["model"], buckets=_SIZE_BUCKETS, registry=r
        )
        self.batch_tokens = Histogram(
            "xalign_batch_tokens", "padded tokens per inference batch", ["model"], buckets=_TOKEN_BUCKETS, registry=r
        )
        self.inference = Histogram(
            "xalign_inference_seconds", "time of one inference batch", ["model"], buckets=_LATENCY_BUCKETS, registry=r
        )
        self.rejected = Counter("xalign_rejected_texts", "texts refused with 429", ["model"], registry=r)
        self.loaded_version = Gauge("xalign_model_version", "served version of each model", ["model"], registry=r)
        self.load_failures = Counter(
            "xalign_model_load_failures", "versions that failed to load", ["model"], registry=r
        )

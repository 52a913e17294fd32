"""Prometheus metrics, one registry per application so tests can run several side by side."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "sealhub_http_requests_total",
            "HTTP requests by route template, method and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "sealhub_http_request_duration_seconds",
            "Time to produce the response head, by route template.",
            ["method", "route"],
            registry=self.registry,
        )

        self.inbox_waiters = Gauge(
            "sealhub_inbox_waiters",
            "Long-polls and event streams waiting in this process for new deliveries.",
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)

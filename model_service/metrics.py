"""Prometheus metrics, named as vLLM names them (``vllm:...``) where vLLM has the metric.

Using vLLM's names means one dashboard serves this service and a vLLM deployment behind
``MODEL_SERVICE_URL``. Metrics vLLM has no equivalent for use the ``model_service:`` prefix.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0,
                    160.0)
_ITL_BUCKETS = (0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.5)
_BATCH_BUCKETS = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 128)


class Metrics:
    """All service metrics in one registry, labelled with the served model name."""

    def __init__(self, model_name: str):
        self.registry = CollectorRegistry()
        self.model_name = model_name
        lbl = ["model_name"]
        r = self.registry
        self.ttft = Histogram("vllm:time_to_first_token_seconds", "Time to first token.", lbl,
                              buckets=_LATENCY_BUCKETS, registry=r).labels(model_name)
        self.e2e = Histogram("vllm:e2e_request_latency_seconds", "End-to-end request latency.", lbl,
                             buckets=_LATENCY_BUCKETS, registry=r).labels(model_name)
        self.itl = Histogram("vllm:inter_token_latency_seconds", "Time between generated tokens.", lbl,
                             buckets=_ITL_BUCKETS, registry=r).labels(model_name)
        self.queue_time = Histogram("vllm:request_queue_time_seconds", "Time waiting before prefill.", lbl,
                                    buckets=_LATENCY_BUCKETS, registry=r).labels(model_name)
        self.running = Gauge("vllm:num_requests_running", "Requests in the running batch.", lbl,
                             registry=r).labels(model_name)
        self.waiting = Gauge("vllm:num_requests_waiting", "Requests waiting for a batch slot.", lbl,
                             registry=r).labels(model_name)
        self.prompt_tokens = Counter("vllm:prompt_tokens", "Prefilled prompt tokens.", lbl,
                                     registry=r).labels(model_name)
        self.generation_tokens = Counter("vllm:generation_tokens", "Generated tokens.", lbl,
                                         registry=r).labels(model_name)
        self.prefix_queries = Counter("vllm:prefix_cache_queries",
                                      "Prompt tokens looked up in the prefix cache.",
                                      lbl, registry=r).labels(model_name)
        self.prefix_hits = Counter("vllm:prefix_cache_hits", "Prompt tokens found in the prefix cache.", lbl,
                                   registry=r).labels(model_name)
        self._success = Counter("vllm:request_success", "Finished requests by finish reason.",
                                ["model_name", "finished_reason"], registry=r)
        self.kv_cache_bytes = Gauge("model_service:kv_cache_bytes", "Bytes held by the KV cache.", lbl,
                                    registry=r).labels(model_name)
        self.batch_size = Histogram("model_service:batch_size", "Rows per decode step.", lbl,
                                    buckets=_BATCH_BUCKETS, registry=r).labels(model_name)
        self.cache_hits = Counter("model_service:cache_hits", "Response cache hits.", lbl,
                                  registry=r).labels(model_name)
        self.cache_misses = Counter("model_service:cache_misses", "Response cache misses.", lbl,
                                    registry=r).labels(model_name)
        self.cache_errors = Counter("model_service:cache_errors", "Response cache (Redis) errors.", lbl,
                                    registry=r).labels(model_name)
        self.rejected = Counter("model_service:requests_rejected", "Requests answered 503 (queue full).", lbl,
                                registry=r).labels(model_name)
        self.cancelled = Counter("model_service:requests_cancelled",
                                 "Requests cancelled because the client went away.", lbl,
                                 registry=r).labels(model_name)
        self.timeouts = Counter("model_service:requests_timed_out", "Requests past their deadline.", lbl,
                                registry=r).labels(model_name)
        self.http_errors = Counter("model_service:http_errors", "Error answers by status.",
                                   ["model_name", "status"], registry=r)

    def finished(self, reason: str) -> None:
        """Count a request that finished (stop, length, tool_calls, abort...)."""
        self._success.labels(self.model_name, reason).inc()

    def http_error(self, status: int) -> None:
        """Count an error answer."""
        self.http_errors.labels(self.model_name, str(status)).inc()

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)

"""Emits a few traces with the OpenTelemetry Python SDK to an OTLP/HTTP endpoint.

A producer tracelab did not write: `tracelab/tests/report_foreign.rs` runs it against tracelab's
receiver and then runs `tracelab report` on what arrived. Two services (`py-shop` calling
`py-payment`), five checkouts with fixed timings: the fourth is the slowest (its payment takes
250 ms), the fifth fails in `py-payment` ("card declined") and the failure travels up to the
root. Prints the ids the test checks as one JSON object.

Usage: python3 python_sdk_traces.py http://127.0.0.1:4318
Needs: pip install opentelemetry-sdk opentelemetry-exporter-otlp-proto-http
"""

import json
import sys
import time

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

MS = 1_000_000


def provider(service, endpoint):
    p = TracerProvider(resource=Resource.create({"service.name": service}))
    p.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint + "/v1/traces")))
    return p


def checkout(shop, payment, start, payment_ms, fails):
    """One request; returns its trace id as 32 hex digits."""
    end = start + (payment_ms + 12) * MS
    root = shop.start_span(
        "POST /checkout",
        kind=SpanKind.SERVER,
        start_time=start,
        attributes={"http.request.method": "POST", "http.route": "/checkout"},
    )
    in_root = set_span_in_context(root)
    cart = shop.start_span("load cart", context=in_root, start_time=start + 1 * MS)
    cart.set_attribute("cart.items", 3)
    cart.end(end_time=start + 6 * MS)
    call = shop.start_span(
        "POST",
        context=in_root,
        kind=SpanKind.CLIENT,
        start_time=start + 7 * MS,
        attributes={"http.request.method": "POST", "server.address": "py-payment"},
    )
    charge = payment.start_span(
        "POST /charge",
        context=set_span_in_context(call),
        kind=SpanKind.SERVER,
        start_time=start + 8 * MS,
        attributes={"http.request.method": "POST", "http.route": "/charge"},
    )
    status = 500 if fails else 200
    if fails:
        charge.set_status(Status(StatusCode.ERROR, "card declined"))
        call.set_status(Status(StatusCode.ERROR, "500"))
        root.set_status(Status(StatusCode.ERROR, "payment failed"))
    charge.set_attribute("http.response.status_code", status)
    charge.end(end_time=start + (8 + payment_ms) * MS)
    call.set_attribute("http.response.status_code", status)
    call.end(end_time=start + (9 + payment_ms) * MS)
    root.set_attribute("http.response.status_code", 502 if fails else 200)
    root.end(end_time=end)
    return format(root.get_span_context().trace_id, "032x")


def main():
    endpoint = sys.argv[1].rstrip("/")
    shop_provider = provider("py-shop", endpoint)
    payment_provider = provider("py-payment", endpoint)
    shop = shop_provider.get_tracer("tracelab.python-sdk-example")
    payment = payment_provider.get_tracer("tracelab.python-sdk-example")
    base = time.time_ns() - 10_000 * MS
    ids = [
        checkout(shop, payment, base + i * 1_000 * MS, payment_ms, i == 4)
        for i, payment_ms in enumerate([20, 30, 40, 250, 45])
    ]
    for p in (shop_provider, payment_provider):
        p.force_flush()
        p.shutdown()
    print(json.dumps({"slowest": ids[3], "failing": ids[4], "traces": ids, "spans": 4 * len(ids)}))


if __name__ == "__main__":
    main()

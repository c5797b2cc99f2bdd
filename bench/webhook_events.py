#!/usr/bin/env python3
"""bench/webhook_events.py — pre-signed Stripe webhook deliveries for bench/webhook_ingest.sh.

    webhook_events.py OUT COUNT SECRET RUN_TAG THREADS

Writes COUNT lines "<Stripe-Signature>\\t<body>", dealt round-robin over THREADS files OUT.0,
OUT.1, … (one per wrk thread, so that no thread reads another's share), each body a distinct event (id
evt_bench<RUN_TAG>x<n>, unique across runs given distinct tags) in the shape of a real
customer.subscription.updated event (about 1.3 kB), signed as Stripe does it (SPEC §4):
t=<now>,v1=HMAC-SHA256(SECRET, "<t>.<body>"). wrk's Lua has no HMAC, so signing happens here
before the load starts; the timestamps are "now", so the file must be used within the 300 s
tolerance (the bench script makes one file per round, just before it).
"""
import hashlib
import hmac
import sys
import time

# A compact event body; %(id)s, %(created)d, %(n)d are filled in per event. No tab or newline.
BODY = (
    '{"id":"%(id)s","object":"event","api_version":"2024-06-20","created":%(created)d,'
    '"data":{"object":{"id":"sub_bench%(n)d","object":"subscription","application":null,'
    '"billing_cycle_anchor":%(created)d,"cancel_at":null,"cancel_at_period_end":false,'
    '"canceled_at":null,"collection_method":"charge_automatically","created":%(created)d,'
    '"currency":"usd","current_period_end":%(end)d,"current_period_start":%(created)d,'
    '"customer":"cus_bench%(n)d","default_payment_method":"pm_bench%(n)d","items":{"object":'
    '"list","data":[{"id":"si_bench%(n)d","object":"subscription_item","created":%(created)d,'
    '"metadata":{},"price":{"id":"price_demo_nextcloud_monthly","object":"price","active":true,'
    '"billing_scheme":"per_unit","currency":"usd","product":"prod_demo_nextcloud",'
    '"recurring":{"interval":"month","interval_count":1,"usage_type":"licensed"},'
    '"type":"recurring","unit_amount":1000},"quantity":1,"subscription":"sub_bench%(n)d"}],'
    '"has_more":false,"total_count":1,"url":"/v1/subscription_items?subscription=sub_bench%(n)d"},'
    '"latest_invoice":"in_bench%(n)d","livemode":false,"metadata":{},"start_date":%(created)d,'
    '"status":"active","trial_end":null,"trial_start":null}},"livemode":false,'
    '"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},'
    '"type":"customer.subscription.updated"}'
)


def main():
    if len(sys.argv) != 6:
        print("usage: webhook_events.py OUT COUNT SECRET RUN_TAG THREADS", file=sys.stderr)
        sys.exit(2)
    out, count, secret, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode(), sys.argv[4]
    nthreads = int(sys.argv[5])
    now = int(time.time())
    prefix = f"{now}.".encode()
    files = [open(f"{out}.{k}", "w", encoding="ascii") for k in range(nthreads)]
    try:
        for n in range(count):
            body = BODY % {
                "id": f"evt_bench{tag}x{n}",
                "created": now - 5,
                "end": now + 30 * 86400,
                "n": n,
            }
            sig = hmac.new(secret, prefix + body.encode(), hashlib.sha256).hexdigest()
            files[n % nthreads].write(f"t={now},v1={sig}\t{body}\n")
    finally:
        for f in files:
            f.close()


if __name__ == "__main__":
    main()

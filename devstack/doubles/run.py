#!/usr/bin/env python3
"""Starts any of the three doubles in one process (for `make run` and manual testing).

    python3 devstack/doubles/run.py --stripe-port 12111 --keycloak-port 8180 \
        --mailgun-port 8025 [--usher-url http://127.0.0.1:8000] [--env-file var/doubles.env]

A double whose port option is absent is not started (port 0 picks a free port). Options of
one double carry its prefix (--stripe-webhook-secret, --keycloak-realm, --mailgun-api-key…;
see --help). Defaults are wired for a local Usher at --usher-url: the Stripe webhook URL is
<usher-url>/onboarding/webhook/, the Keycloak login client accepts <usher-url>/* as redirect
URI, the realm keeps unmanaged attributes (ADMIN_EDIT), has the group usher-admins, every group
the catalog names (--catalog, default devstack/catalog.json: the same file `usher catalog
apply` reads, so the realm and the catalog cannot drift apart) and a demo admin
(admin / admin), and the emails Keycloak "sends" appear in the Mailgun inbox.

--env-file writes the Usher configuration that points at the doubles (KEY=value lines);
--print-env prints it. --ready-file writes {"stripe": url, …} once every double listens.
Ctrl-C or SIGTERM stops everything.
"""

import argparse
import json
import os
import pathlib
import signal
import sys
import threading

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from devstack.doubles import keycloak_double, mailgun_double, stripe_double  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]


def build_parser():
    ap = argparse.ArgumentParser(description="devstack doubles: Stripe, Keycloak, Mailgun")
    ap.add_argument("--stripe-port", type=int, default=None)
    ap.add_argument("--keycloak-port", type=int, default=None)
    ap.add_argument("--mailgun-port", type=int, default=None)
    ap.add_argument("--usher-url", default="http://127.0.0.1:8000",
                    help="where Usher runs (webhook and redirect URI defaults)")
    ap.add_argument("--env-file", default=None, help="write Usher's settings here")
    ap.add_argument("--print-env", action="store_true")
    ap.add_argument("--ready-file", default=None)
    ap.add_argument("--no-demo-admin", action="store_true",
                    help="do not create the admin/admin user in the realm")
    ap.add_argument("--mailgun-sending-domain", default="mg.devstack.test",
                    help="MAILGUN_DOMAIN written to the env file")
    ap.add_argument("--catalog", default=None,
                    help="Usher catalog (JSON) whose groups the Keycloak realm gets; default "
                         "devstack/catalog.json")
    ap.add_argument("--verbose", action="store_true", help="log every request")
    stripe_double.add_arguments(ap, "stripe-")
    keycloak_double.add_arguments(ap, "keycloak-")
    mailgun_double.add_arguments(ap, "mailgun-")
    ap.set_defaults(keycloak_unmanaged_attribute_policy="ADMIN_EDIT")
    return ap


def catalog_groups(path):
    """Every group a catalog file names: its `groups` list and each instance's `groups`."""
    catalog = json.loads(pathlib.Path(path).read_text())
    names = list(catalog.get("groups") or [])
    for instance in catalog.get("instances") or []:
        names.extend(instance.get("groups") or [])
    return list(dict.fromkeys(names))


def main(argv=None):
    args = build_parser().parse_args(argv)
    default_catalog = REPO / "devstack" / "catalog.json"
    if args.catalog is None and default_catalog.exists():
        args.catalog = str(default_catalog)
    usher = args.usher_url.rstrip("/")
    if args.stripe_webhook_url is None:
        args.stripe_webhook_url = usher + "/onboarding/webhook/"
    if args.stripe_catalog is None:
        args.stripe_catalog = args.catalog
    if args.keycloak_redirect_uri is None:
        args.keycloak_redirect_uri = [usher + "/*"]
    for name in ["usher-admins"] + (catalog_groups(args.catalog) if args.catalog else []):
        if name not in args.keycloak_group:
            args.keycloak_group.append(name)
    if not args.no_demo_admin:
        args.keycloak_user.append({"username": "admin", "password": "admin",
                                   "email": "admin@example.test", "firstName": "Demo",
                                   "lastName": "Admin", "groups": ["usher-admins"]})

    started, env, urls = [], {}, {}
    try:
        mg = kc = None
        if args.mailgun_port is not None:
            mg = mailgun_double.from_args(args, args.mailgun_port, "mailgun-",
                                          args.verbose).start()
            started.append(mg)
            urls["mailgun"] = mg.url
            env.update(MAILGUN_API_BASE=mg.url, MAILGUN_API_KEY=args.mailgun_api_key,
                       MAILGUN_DOMAIN=args.mailgun_sending_domain,
                       MAILGUN_WAITLIST_ADDRESS="waitlist@" + args.mailgun_sending_domain)
            print(f"mailgun  {mg.url}   inbox: {mg.url}/inbox", flush=True)
        if args.keycloak_port is not None:
            kc = keycloak_double.from_args(args, args.keycloak_port, "keycloak-",
                                           args.verbose).start()
            started.append(kc)
            urls["keycloak"] = kc.url
            env.update(KEYCLOAK_SERVER_URL=kc.url, KEYCLOAK_REALM=kc.realm,
                       OIDC_RP_CLIENT_ID=args.keycloak_client_id,
                       OIDC_RP_CLIENT_SECRET=args.keycloak_client_secret,
                       KEYCLOAK_ADMIN_CLIENT_ID=args.keycloak_admin_client_id,
                       KEYCLOAK_ADMIN_CLIENT_SECRET=args.keycloak_admin_client_secret)
            if mg is not None:
                sender = f"keycloak@{args.mailgun_sending_domain}"
                kc.on_email = lambda rec: mg.inject(rec["to"], rec["subject"], rec["text"],
                                                    sender=sender, source="keycloak")
            print(f"keycloak {kc.url}   issuer: {kc.issuer}   outbox: {kc.url}/inbox",
                  flush=True)
        if args.stripe_port is not None:
            st = stripe_double.from_args(args, args.stripe_port, "stripe-",
                                         args.verbose).start()
            started.append(st)
            urls["stripe"] = st.url
            env.update(STRIPE_API_BASE=st.url,
                       STRIPE_SECRET_KEY=args.stripe_api_key or "sk_test_devstack",
                       STRIPE_PUBLISHABLE_KEY="pk_test_devstack",
                       STRIPE_WEBHOOK_SECRET=args.stripe_webhook_secret,
                       STRIPE_CHECKOUT_UI="hosted")
            print(f"stripe   {st.url}   webhooks → {st.config['webhook_url']}   "
                  f"prices: {len(st.state.prices)}", flush=True)
        if not started:
            print("nothing to start: give --stripe-port, --keycloak-port and/or "
                  "--mailgun-port", file=sys.stderr)
            return 2
        text = "".join(f"{k}={v}\n" for k, v in env.items())
        if args.env_file:
            pathlib.Path(args.env_file).write_text(text)
        if args.print_env:
            print(text, end="", flush=True)
        if args.ready_file:
            tmp = args.ready_file + ".tmp"
            pathlib.Path(tmp).write_text(json.dumps(urls))
            os.replace(tmp, args.ready_file)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *a: stop.set())
        signal.signal(signal.SIGINT, lambda *a: stop.set())
        stop.wait()
        return 0
    finally:
        for d in started:
            d.stop()


if __name__ == "__main__":
    sys.exit(main())

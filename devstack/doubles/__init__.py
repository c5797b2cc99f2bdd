"""Stateful local doubles of Stripe, Keycloak and Mailgun for development and tests.

Each double is a module that runs standalone (`python3 -m devstack.doubles.stripe_double …`)
and, imported, starts in a background thread of the calling process:

    from devstack.doubles import start_stripe, start_keycloak, start_mailgun
    st = start_stripe(webhook_url="http://127.0.0.1:8000/onboarding/webhook/",
                      webhook_secret="whsec_test")
    st.url, st.state, st.stop()

See README.md in this directory for the HTTP and control APIs.
"""

import importlib

_EXPORTS = {
    "StripeDouble": "stripe_double", "start_stripe": "stripe_double",
    "KeycloakDouble": "keycloak_double", "start_keycloak": "keycloak_double",
    "MailgunDouble": "mailgun_double", "start_mailgun": "mailgun_double",
}
__all__ = list(_EXPORTS)


def __getattr__(name):
    # Lazy, so that `python3 -m devstack.doubles.<module>` does not import <module> twice.
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(name)

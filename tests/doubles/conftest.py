"""Fixtures for the tests of the devstack doubles (devstack/doubles/pytest_plugin.py)."""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from devstack.doubles.pytest_plugin import (  # noqa: E402,F401
    keycloak_double, mailgun_double, stripe_double, webhook_receiver)

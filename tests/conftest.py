"""Shared test configuration: hypothesis profiles.

Pick one with the ``HYPOTHESIS_PROFILE`` environment variable:

- ``default`` (local runs): randomised, enough examples to find bugs in under 90 s.
- ``ci``: derandomised (the same examples on every run), fewer examples so the property
  suite runs in under a minute on two cores, no deadline (shared runners are slow).
- ``deep``: randomised, ten times the local examples, to hunt rare cases before a release
  (``HYPOTHESIS_PROFILE=deep .venv/bin/python -m pytest tests/property``, 15 to 25 minutes).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "default",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "ci",
    max_examples=100,
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "deep",
    max_examples=2000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

"""Test configuration: hypothesis profiles and float64 defaults.

The ``ci`` profile (selected when the CI environment variable is set, or with
``--hypothesis-profile=ci``) is derandomized so that a CI failure reproduces; every
profile has ``deadline=None`` because the first example of a test pays for Numba
compilation.
"""
import os

from hypothesis import HealthCheck, settings

_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("dev", max_examples=25, **_common)
settings.register_profile("ci", max_examples=25, derandomize=True, print_blob=True, **_common)
settings.register_profile("thorough", max_examples=300, **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

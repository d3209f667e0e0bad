"""Test configuration: hypothesis profiles and float64 defaults.

The ``ci`` profile (selected when the CI environment variable is set, or with
``--hypothesis-profile=ci``) is derandomized so that a CI failure reproduces; every
profile has ``deadline=None`` because the first example of a test pays for Numba
compilation.

A test's own ``@settings(max_examples=...)`` wins over every profile; to hunt with more
examples everywhere, ``HYPOTHESIS_SCALE=5`` multiplies each test's count (see
docs/contributing.md, "Randomized runs").
"""
import os

from hypothesis import HealthCheck, settings

_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("dev", max_examples=25, **_common)
settings.register_profile("ci", max_examples=25, derandomize=True, print_blob=True, **_common)
settings.register_profile("thorough", max_examples=300, **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def pytest_collection_modifyitems(items):
    """Multiply every hypothesis test's max_examples by HYPOTHESIS_SCALE (default 1)."""
    scale = float(os.environ.get("HYPOTHESIS_SCALE", "1"))
    if scale == 1:
        return
    scaled = set()
    for item in items:
        test = getattr(item, "obj", None)
        own = getattr(test, "_hypothesis_internal_use_settings", None)  # read by @given at call time
        if own is not None and id(test) not in scaled:
            scaled.add(id(test))
            test._hypothesis_internal_use_settings = settings(own, max_examples=max(1, int(own.max_examples * scale)))

"""How many examples a Hypothesis property runs, relative to the loaded profile.

tests/conftest.py loads the ``default`` profile (Hypothesis' 100 examples per property: CI
and ``scripts/test``) or, with ``HYPOTHESIS_PROFILE=fast`` (``scripts/test --fast``), the
``fast`` one (10). A property that asks for more or fewer than the default says so with
``examples(n)``, so the fast loop scales it too instead of running its explicit count.
"""

from __future__ import annotations

from hypothesis import settings

DEFAULT = 100  # Hypothesis' own max_examples, which ``n`` is relative to
LEAST = 5  # below this a property hardly explores anything


def examples(n: int) -> int:
    """``n`` under the default profile, scaled by the loaded profile's ``max_examples``."""
    return max(LEAST, n * settings().max_examples // DEFAULT)

"""Exercise checkers: call one after filling a blank; it says what is wrong, or confirms success.

Each lesson's checks live in their own module (``course.checks.forward`` for lesson 01, …) and
are built from the helpers of :mod:`course.checks.core`.
"""

from course.checks.core import CheckResult

__all__ = ["CheckResult"]

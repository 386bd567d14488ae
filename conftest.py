"""Test-suite settings shared by the unit tests and the nbval notebook runs.

Notebooks run in the ``smoke`` profile unless ``COURSE_PROFILE`` is already set
(``COURSE_PROFILE=cpu pytest solutions/`` runs them at laptop size). Kernels started by nbval
inherit this environment. ``COURSE_NO_WIDGETS`` makes sliders draw their static figures.
"""

import os

os.environ.setdefault("COURSE_PROFILE", "smoke")
os.environ.setdefault("COURSE_NO_WIDGETS", "1")

"""Test-suite settings shared by the unit tests and the nbval notebook runs.

Notebooks run in the ``smoke`` profile unless ``COURSE_PROFILE`` is already set
(``COURSE_PROFILE=cpu pytest solutions/`` runs them at laptop size). Kernels started by nbval
inherit this environment. ``COURSE_NO_WIDGETS`` makes sliders draw their static figures.
"""

import os

os.environ.setdefault("COURSE_PROFILE", "smoke")
os.environ.setdefault("COURSE_NO_WIDGETS", "1")

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Several workers share the cores: one math thread each (and in each notebook kernel, which inherits
    # this). Two workers × two threads on two cores made OpenMP spin and the suite ~4× slower (measured).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)

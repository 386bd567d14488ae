"""`course`: the helper package of « La Théorie de la Diffusion Stable », built from scratch.

Each concept lives in its own small module (``course.schedules``, ``course.forward``, …) and is
imported explicitly by the notebooks. Importing ``course`` itself is cheap: no torch import here.
"""

from course.profiles import Profile, current_profile

__version__ = "0.1.0"

__all__ = ["Profile", "current_profile", "__version__"]

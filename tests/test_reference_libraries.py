"""The parity tests compare our from-scratch code with diffusers and transformers: those libraries must be
installed where the tests run, so a missing one fails here, loudly, instead of the parity tests skipping."""

import importlib

import pytest


@pytest.mark.parametrize("name", ["diffusers", "transformers"])
def test_reference_library_is_installed(name):
    try:
        importlib.import_module(name)
    except ImportError as err:
        pytest.fail(f"the parity tests need {name} ({err}): pip install -e '.[dev]'")

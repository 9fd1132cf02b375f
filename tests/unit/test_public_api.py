"""The public API: one import, a sorted and complete ``__all__``, no test-only imports."""

from __future__ import annotations
import __future__

import importlib
import inspect
import subprocess
import sys
import types

import pytest

import referralkit as rk

PUBLIC_MODULES = ["referralkit", "referralkit.policies", "referralkit.attribution"]


def isort_key(name: str) -> tuple[int, str]:
    """Ruff's isort-style order (RUF022): CONSTANTS, then Classes, then everything else."""
    if name.isupper():
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


def public_names(module: types.ModuleType) -> set[str]:
    """Names bound in the module that are neither private, submodules nor __future__ flags."""
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not inspect.ismodule(value)
        and not isinstance(value, type(__future__.annotations))
    }


@pytest.mark.parametrize("name", PUBLIC_MODULES[1:])
def test_all_of_each_public_module_is_sorted(name: str) -> None:
    module = importlib.import_module(name)
    assert list(module.__all__) == sorted(module.__all__, key=isort_key)


def test_all_of_the_root_is_sorted() -> None:
    assert list(rk.__all__) == sorted(rk.__all__, key=isort_key)


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_is_complete_without_repeats(name: str) -> None:
    module = importlib.import_module(name)
    exported = set(module.__all__)
    assert len(exported) == len(module.__all__)
    assert public_names(module) <= exported
    # SQLAlchemyStore needs an extra: it is loaded lazily, by module __getattr__.
    assert exported - public_names(module) <= {"__version__", "SQLAlchemyStore"}


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_every_exported_name_is_importable(name: str) -> None:
    module = importlib.import_module(name)
    namespace: dict[str, object] = {}
    exec(f"from {name} import *", namespace)
    for export in module.__all__:
        assert getattr(module, export) is not None
        assert export in namespace


# Exported at the root as AllOf / AnyOf: under ``from referralkit import *`` the short names
# would shadow ``typing.Any`` (and read like ``builtins.all`` / ``any``).
SHADOWING = {"All", "Any"}


def test_policies_and_attribution_names_are_re_exported_at_the_root() -> None:
    for export in set(rk.policies.__all__) - SHADOWING:
        assert getattr(rk, export) is getattr(rk.policies, export)
    assert rk.AllOf is rk.policies.All
    assert rk.AnyOf is rk.policies.Any


def test_a_star_import_does_not_shadow_typing_any() -> None:
    namespace: dict[str, object] = {}
    exec("from typing import Any\nfrom referralkit import *", namespace)
    assert namespace["Any"] is __import__("typing").Any
    assert not SHADOWING & set(rk.__all__)


def test_every_error_derives_from_the_one_root() -> None:
    errors = [getattr(rk, n) for n in rk.__all__ if n.endswith("Error")]
    from referralkit import _errors

    assert {e.__name__ for e in errors} == set(_errors.__all__)  # every error is exported
    assert all(issubclass(e, rk.ReferralKitError) for e in errors)
    assert issubclass(rk.InvalidInputError, ValueError)
    assert issubclass(rk.MissingExtraError, ImportError)
    for sub in (
        rk.InvalidEventError,
        rk.CurrencyMismatchError,
        rk.NaiveDatetimeError,
        rk.InvalidProgramError,
        rk.InvalidSignatureError,
    ):
        assert issubclass(sub, rk.InvalidInputError)
    assert issubclass(rk.UnknownOrderError, rk.RetryLaterError)
    assert issubclass(rk.ConcurrencyError, rk.StoreError)


def test_the_version_is_a_string() -> None:
    assert isinstance(rk.__version__, str)
    assert rk.__version__


def test_importing_referralkit_imports_no_test_tools() -> None:
    code = (
        "import sys, referralkit\n"
        "print(sorted(m for m in sys.modules"
        " if m.split('.')[0] in {'hypothesis', 'pytest', '_pytest'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"

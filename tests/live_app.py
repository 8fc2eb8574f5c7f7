"""The live app for test modules: ``live_app = module_fixture()`` gives one running ``python app.py``
per module (``bench.live_app`` starts and stops it)."""

from __future__ import annotations

from typing import Iterator, Sequence

import pytest

from bench.live_app import AppStartError, LiveApp, running_app

__all__ = ["AppStartError", "LiveApp", "module_fixture", "running_app"]


def module_fixture(name: str = "live_app", args: Sequence[str] = ()):
    """A module-scoped pytest fixture named ``name`` that yields a running ``LiveApp``.

    Assign it at module level: ``live_app = module_fixture()``.
    """
    @pytest.fixture(scope="module", name=name)
    def _live_app() -> Iterator[LiveApp]:
        try:
            with running_app(args) as app:
                yield app
        except AppStartError as err:
            pytest.fail(str(err), pytrace=False)
    return _live_app

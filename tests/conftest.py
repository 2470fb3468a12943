"""Shared pytest fixtures: the reference fixtures folder and deterministic torch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from tests.assets import pyfeat_data  # noqa: F401  (fixture: the real-face test videos)

REPO = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = Path(os.environ.get("L2S_SHARED_FIXTURES", REPO.parent / "shared" / "fixtures"))


def fixture_dir(name: str) -> Path:
    """``../shared/fixtures/<name>``, or skip the test when it is absent."""
    path = SHARED_FIXTURES / name
    if not path.is_dir():
        pytest.skip(f"reference fixtures not available: {path}")
    return path


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.manual_seed(0)
    yield


@pytest.fixture
def lipvoicer_fixtures() -> Path:
    return fixture_dir("lipvoicer")


@pytest.fixture
def auto_avsr_fixtures() -> Path:
    return fixture_dir("auto_avsr")

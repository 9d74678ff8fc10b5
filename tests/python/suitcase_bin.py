"""The suitcase binary the Python tests run (imported by them; pytest puts this folder
on sys.path)."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def binary() -> Path:
    """$SUITCASE_BIN, else target/release/suitcase, else target/debug/suitcase."""
    env = os.environ.get("SUITCASE_BIN")
    if env:
        return Path(env)
    for profile in ("release", "debug"):
        p = ROOT / "target" / profile / "suitcase"
        if p.exists():
            return p
    pytest.fail("no suitcase binary: build it (cargo build) or set SUITCASE_BIN")

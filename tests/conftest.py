from pathlib import Path

import pytest

from verify.search import Budget

pytest_plugins = ["pytester"]

DATA = Path(__file__).parent / "data"

#: small searches keep the suite fast: 10 Hypothesis structures (diversity finds mutants), 1,280 instances
SMALL = Budget(examples=10, batch=128)


@pytest.fixture
def data() -> Path:
    return DATA

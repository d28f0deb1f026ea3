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


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """One pytest process compiles thousands of small programs; drop them after each module so
    the process stays under the kernel's memory-map limit (see verify.numeric.release_compiled)."""
    yield
    from verify.numeric import release_compiled

    release_compiled()

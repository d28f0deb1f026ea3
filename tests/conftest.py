from pathlib import Path

import pytest

from verify.engine.search import Budget

pytest_plugins = ["pytester"]

DATA = Path(__file__).parent / "data"

#: small searches keep the suite fast: 10 batches (half of them spread over the small scope), 1,280 instances
SMALL = Budget(examples=10, batch=128)
#: what a theorem's outcome is tested at: the batches the default budget gives it (one for every
#: structure of its small scope and a quarter as many again on random structures, at least 10; see
#: Budget.resolved), 64 instances each and without the top-up to 100,000 instances meeting the
#: assumptions, which is `verify run`'s. Each structure is a compilation, so the batches are not more
COVER = Budget(batch=64, meeting=0)


@pytest.fixture
def data() -> Path:
    return DATA


@pytest.fixture(autouse=True)
def _float64():
    """This suite calls properties and models directly, as the engine does: inside dlverify's JAX
    settings (float64). Importing dlverify alone changes nothing (tests/test_config.py)."""
    from verify.config import float64

    with float64():
        yield


@pytest.fixture(autouse=True, scope="session")
def _reuse_xla_cache():
    """The suite runs each commit once: it reuses XLA's persistent cache, whose entries outlive a
    change of the sources (verify.engine.programs.REUSE_XLA_CACHE); tests/test_programs.py checks
    both policies."""
    from verify.engine import programs

    programs.REUSE_XLA_CACHE = True
    yield


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """One pytest process compiles thousands of small programs; drop them after each module so
    the process stays under the kernel's memory-map limit (see verify.engine.evaluate.release_compiled)."""
    yield
    from verify.engine.evaluate import release_compiled

    release_compiled()

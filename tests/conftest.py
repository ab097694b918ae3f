"Shared pytest setup: markers, and the real data folder the integration tests read."
import os
from pathlib import Path

import pytest

from animepop.config import data_dir


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: needs minutes (full corpus, end-to-end runs); CI skips it")
    config.addinivalue_line("markers", "gpu: needs a CUDA device; CI skips it")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    "The real data folder (`ANIMEPOP_DATA_DIR`, else ../shared/data); the integration tier needs it."
    d = data_dir()
    if not (d/"anime-mapper"/"anime.jsonl.gz").exists():
        pytest.fail(f"integration tests need the shared data at {d}: set ANIMEPOP_DATA_DIR")
    return d

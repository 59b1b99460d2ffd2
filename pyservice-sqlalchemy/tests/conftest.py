from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

HERE = Path(__file__).parent
# The test service module lives next to the tests (importlib mode does not add it).
sys.path.insert(0, str(HERE))


def psycopg_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


@pytest.fixture
def pg_url(postgresql_url: str) -> str:
    return psycopg_url(postgresql_url)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test that asks runs once against SQLite and once against PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db.sqlite3'}"
    return psycopg_url(request.getfixturevalue("postgresql_url"))


@pytest.fixture
def prefix() -> str:
    return f"pssa_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def app(database_url: str, prefix: str) -> Iterator[Any]:
    """Factory: ``app(**plugin_config)`` builds the test service on fresh tables, dropped afterwards."""
    from sa_testapp import make_app

    built: list[Any] = []

    def build(**config: Any) -> Any:
        service, models, _ = make_app(database_url, prefix, **config)
        if not built:
            models.base.metadata.create_all(admin)
        built.append((service, models))
        return service, models

    build.url = database_url  # type: ignore[attr-defined]
    admin = create_engine(database_url)
    yield build
    for service, _ in built:
        service.plugins[0].dispose()
    if built:
        built[0][1].base.metadata.drop_all(admin)
    admin.dispose()

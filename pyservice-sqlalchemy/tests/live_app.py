"""The test service under ``pyservice serve``: configured by environment variables.

The engine is used once at import, in the server's master process, the way
an application checks its database at start-up: the workers forked from it
must not share that connection.
"""

from __future__ import annotations

import os

from sa_testapp import make_app
from sqlalchemy import text

service, models, api = make_app(
    os.environ["PSSA_URL"],
    os.environ["PSSA_PREFIX"],
    connect_args={"application_name": os.environ["PSSA_PREFIX"]},
)
with service.plugins[0].engine.connect() as connection:
    connection.execute(text("SELECT 1"))

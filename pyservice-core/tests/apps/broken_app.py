"""A module whose import fails in its own code: ``pyservice serve`` shows where."""

import pyservice

service = pyservice.Service(operations=["echo"])
raise RuntimeError("the broken app fails at import")

"""pyservice-sqlalchemy: one SQLAlchemy session per call, committed after the answer is encoded.

Enable it in the api description::

    {"plugins": {"sqlalchemy": {"url": "postgresql+psycopg://app@db/app"}}}

and use ``context.session`` in handlers. See the README for every key.
"""

from __future__ import annotations

from ._errors import ERROR_KINDS
from ._plugin import DEFAULT_URL, SQLAlchemy
from ._serialize import to_dict

__all__ = ["DEFAULT_URL", "ERROR_KINDS", "SQLAlchemy", "to_dict"]

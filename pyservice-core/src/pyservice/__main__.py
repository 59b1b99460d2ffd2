"""``python -m pyservice`` is the ``pyservice`` command."""

from ._cli import main

raise SystemExit(main())

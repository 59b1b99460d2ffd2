"""The benchmark suite behind ``python bench/run.py``: one module per section."""

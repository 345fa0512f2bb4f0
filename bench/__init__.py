"""Benchmarks: ``python -m bench [name ...]`` (or ``make bench``).

Every figure is printed beside a baseline measured in the same run, and written to
``bench/results/<name>.json``. docs/performance.md records the figures.
"""

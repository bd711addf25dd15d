"""Benchmarks of mlwf_nb: one ``bench_<area>.py`` module per area, run by ``python -m benchmarks.run``.

A module lists its rows in ``ROWS``: callables ``fn(quick: bool)`` that return one
result dict (or a list of them) made by :func:`benchmarks._common.result`.
"""

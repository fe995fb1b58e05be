"""Benchmarks (not tests): `python -m bench` runs them all, `python -m bench wave` one.

Each prints a table with this project's figure next to the baseline's measured in the same run
(the naive design: one APScheduler job per reminder in a SQLAlchemy job store), and writes its
result as JSON under bench/results/.
"""

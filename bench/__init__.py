"""Benchmarks for penpal-relay: intake against Postfix, store scaling, scrub and screen.

Run `python -m bench --help`. Every result is printed as one JSON line; `--report` also
writes the Markdown tables (and charts) into docs/benchmarks.md. Nothing here is run by the
test suite except a smoke run with tiny sizes.
"""

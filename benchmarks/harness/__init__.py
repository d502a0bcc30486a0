"""The benchmark harness behind ``benchmarks/run.py`` (stdlib only)."""

"""Code the benchmark scripts share. A folder of its own because every ``benchmarks/*.py`` is a
script: ``make bench`` / ``make bench-smoke`` and tests/benchmarks/test_smoke.py run each one."""

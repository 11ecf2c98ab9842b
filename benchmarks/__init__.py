"""Side-by-side benchmarks of django-async-toolkit: ``python -m benchmarks`` or ``scripts/bench``.

Each figure is measured in one run against what a user would otherwise use, as medians of several
interleaved rounds (A B A B ...), so that machine noise affects both sides alike. Results are
printed as a table of ratios and written to ``benchmarks/results/`` as JSON and a PNG chart.
"""

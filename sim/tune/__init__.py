"""Compare, sweep and tune deployment knobs (DESIGN §1, §8): every evaluation goes through
:class:`sim.executor.Runner` on common random numbers.

- :mod:`sim.tune.metrics`: summary figures by dotted name, constraints such as
  ``ttft_s.p95<=2``, Pareto fronts;
- :mod:`sim.tune.space`: grids, random and Latin-hypercube samples of dotted knobs;
- :mod:`sim.tune.sweep`: a resumable sweep into one Parquet table;
- :mod:`sim.tune.compare`: configurations side by side with paired differences;
- :mod:`sim.tune.optimize`: Optuna constrained multi-objective tuning.
"""

"""atlas-tasks benchmarks: `python -m benchmarks` (what `make bench` runs) prints one table and writes
docs/benchmarks.md. Each module holds a group of rows; :mod:`benchmarks.run` lists them all."""

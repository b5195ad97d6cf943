"""The reliability campaigns of atlas-tasks: crash points, power loss, real power cuts, storms, faults and names.

``python -m reliability`` runs them all and prints one table (``--fast`` for the small subset the test suite runs);
each campaign also runs against deliberately weakened write paths (negative controls), which must be caught.
See docs/reliability.md for the method and the figures of the last full run.
"""

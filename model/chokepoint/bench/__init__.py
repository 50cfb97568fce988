"""Benchmarks, kept out of the test run: the suites, seeded synthetic chains, and the
independent max-flow and linear-algebra baselines."""

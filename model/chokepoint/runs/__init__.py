"""Running scenarios: the scenario schema, sweeps and sensitivity samples on processes or Dask,
saved parts for resuming, rankings and band narrowing."""

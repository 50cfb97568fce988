"""Statistics -> balanced networks: the Trade Map importer, the inputs under ``data/``, the
material-flow step, counterfactual edits of the statistics and the data check."""

"""What a run leaves: the labelled Dataset and CSVs, figures, the HTML report, and the
documentation generated from the model (its mathematics, the scenario reference)."""

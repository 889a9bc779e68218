"""The Overview tab: charts, legend and compare table of an experiment's statistics."""

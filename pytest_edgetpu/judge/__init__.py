"""The judge: baselines, verdicts, the gate that makes a result of a measurement, results and
their codec, and the collector of a run's results."""

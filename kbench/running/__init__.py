"""Running: backends, timing one configuration, worker processes, sweeps, shards, the profile cache."""

"""Results: the sweep CSV schema (columns, keys, statuses, row validation, reading), frames, merge, scaling, statistics."""

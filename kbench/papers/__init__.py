"""The seed papers' tables as data, and their reproduction."""

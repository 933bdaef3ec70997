"""Models: the registry of the zoo, model requests, the user's own models, selectors."""

"""Bi-encoder embedders: backbone loading, pooling, the saved-model spec (`embedkit.json`)."""

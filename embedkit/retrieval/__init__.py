"""Retrieval below evaluation, training, mining and compression: encode through the embedding cache, search with
faiss, turn hits into runs, and find the models a training run holds."""

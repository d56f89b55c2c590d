"""Fetching models and datasets: the download registry, hub/URL/PaddleNLP transfers, archives and conversions.

The CLI calls `embedkit.hub.download.fetch` and renders its result with `embedkit.hub.render`.
"""

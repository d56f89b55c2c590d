"""Model compression: layer pruning (`embedkit prune`), scored and checked on the task's own data."""

from embedkit.compression.pruning import PruneRequest, prune

__all__ = ["PruneRequest", "prune"]

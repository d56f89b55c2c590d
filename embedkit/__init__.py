"""embedkit: train, evaluate, benchmark, prune and quantize text-embedding models on PaddlePaddle."""

__version__ = "0.1.0"

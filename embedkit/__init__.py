"""embedkit: train, evaluate and benchmark text-embedding models on PaddlePaddle; encode texts with them."""

__version__ = "0.1.0"

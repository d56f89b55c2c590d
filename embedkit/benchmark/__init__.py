"""`embedkit bench`: encoding speed and memory of each inference engine, against sentence-transformers."""

"""`embedkit export`: models written out for other tools (sentence-transformers) and for serving (ONNX)."""

from embedkit.export.service import ExportResult, export_model

__all__ = ["ExportResult", "export_model"]

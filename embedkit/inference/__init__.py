"""Inference engines (Paddle dygraph, Paddle Inference, ONNX Runtime) behind one `Encoder`."""

from embedkit.inference.encoder import Encoder
from embedkit.inference.engines import ENGINE_CHOICES, ENGINES, available_engines, resolve_device, resolve_engine
from embedkit.inference.export import ExportInfo, ExportMismatchError
from embedkit.inference.runtime import TowerForward, load_forward, load_tower_forwards

__all__ = ["Encoder", "ENGINES", "ENGINE_CHOICES", "available_engines", "resolve_device", "resolve_engine",
           "ExportInfo", "ExportMismatchError", "TowerForward", "load_forward", "load_tower_forwards"]

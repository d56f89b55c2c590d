"""Paddle Inference: a predictor over the ``paddle.jit.save`` graph, oneDNN on CPU, CUDA (optionally TensorRT) on GPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from embedkit.inference.engines import Device, cpu_cores
from embedkit.modeling.encode import BatchForward

MODEL_FILE = "model.json"
PARAMS_FILE = "model.pdiparams"
FILES = (MODEL_FILE, PARAMS_FILE)
# oneDNN caches one kernel set per input shape; batches are padded to multiples of 8 tokens, so a few
# dozen shapes cover a run, and the cap keeps memory flat on long ones.
ONEDNN_SHAPE_CACHE = 64


def paddle_inference_forward(export_dir: Path, device: Device = "cpu", threads: int | None = None,
                             tensorrt: bool = False, max_batch_size: int = 32, max_len: int = 512) -> BatchForward:
    """A BatchForward running the exported graph in ``export_dir``.

    ``tensorrt`` (GPU only) builds TensorRT engines for batch 1..``max_batch_size`` and length 1..``max_len``.
    """
    from paddle import inference

    config = inference.Config(str(export_dir / MODEL_FILE), str(export_dir / PARAMS_FILE))
    if device == "gpu":
        config.enable_use_gpu(256, 0)
        if tensorrt:
            _enable_tensorrt(config, export_dir, max_batch_size, max_len)
    else:
        config.disable_gpu()
        config.enable_onednn()
        config.set_onednn_cache_capacity(ONEDNN_SHAPE_CACHE)
        config.set_cpu_math_library_num_threads(threads or cpu_cores())
    config.disable_glog_info()
    predictor = inference.create_predictor(config)
    names = predictor.get_input_names()
    output = predictor.get_output_handle(predictor.get_output_names()[0])

    def forward(batch: dict[str, np.ndarray]) -> np.ndarray:
        for name in names:
            predictor.get_input_handle(name).copy_from_cpu(np.ascontiguousarray(batch[name]))
        predictor.run()
        return output.copy_to_cpu().astype(np.float32, copy=False)

    return forward


def _enable_tensorrt(config, export_dir: Path, max_batch_size: int, max_len: int) -> None:
    from paddle import inference

    config.enable_tensorrt_engine(workspace_size=1 << 30, max_batch_size=max_batch_size, min_subgraph_size=3,
                                  precision_mode=inference.PrecisionType.Float32, use_static=True,
                                  use_calib_mode=False)
    names = ("input_ids", "attention_mask", "token_type_ids")
    config.set_trt_dynamic_shape_info({n: [1, 1] for n in names}, {n: [max_batch_size, max_len] for n in names},
                                      {n: [max_batch_size, max_len] for n in names})
    # Serialised engines are keyed by shapes; keep them beside the graph they were built from.
    config.set_optim_cache_dir(str(export_dir / "tensorrt"))

"""Multi-process training through ``python -m paddle.distributed.launch``.

``embedkit train --nproc N`` re-runs itself under Paddle's launcher, which starts N workers with the
collective environment (rank, world size, endpoints) set. On a CUDA build each worker gets one GPU
(``--devices``); on a CPU build the launcher falls back to the gloo backend, which is what the tests use.

What the launcher needs on this stack (paddlepaddle 3.3.1), found by running it:

- On a CPU build ``CUDA_VISIBLE_DEVICES`` must be *unset*: the launcher reads any value, even an empty
  string, as a list of GPUs and crashes with an IndexError. :func:`launcher_env` removes it.
- It retries a failed pod up to 3 times by default; a user error would then run four times, so
  ``--max_restart 0``.
- The training script may be any executable: ``python -u -m embedkit.cli …`` is passed as the "script"
  ``sys.executable`` with its arguments, so the workers run the same interpreter and package as the parent
  (running ``embedkit/cli.py`` as a file would put ``embedkit/`` first on ``sys.path``).
- Worker output goes to ``<log_dir>/workerlog.<rank>``; the launcher echoes rank 0's log to the terminal.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import Optional

from embedkit.errors import UserError

# CLI options that request the relaunch; the workers must not see them or they would relaunch again.
LAUNCH_OPTIONS = ("--nproc", "--gpus")


def launcher_command(nproc: int, gpus: Optional[str], entrypoint: Sequence[str],
                     log_dir: Optional[str] = None) -> list[str]:
    """``python -m paddle.distributed.launch … <entrypoint>`` running ``nproc`` workers on this node.

    ``gpus`` is a comma-separated list of device ids (``"0,1"``); worker i uses the i-th. ``entrypoint``
    is the worker command; its first element must be an executable or a ``.py`` script.
    """
    if nproc < 1:
        raise UserError(f"--nproc must be at least 1, got {nproc}")
    command = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", str(nproc),
               "--max_restart", "0"]
    if gpus is not None:
        devices = [d.strip() for d in gpus.split(",") if d.strip()]
        if not all(d.isdigit() for d in devices) or not devices:
            raise UserError(f"--gpus expects comma-separated device ids such as 0,1; got {gpus!r}")
        if len(devices) < nproc:
            raise UserError(f"--nproc {nproc} needs {nproc} GPUs but --gpus lists {len(devices)} ({gpus})")
        command += ["--devices", ",".join(devices[:nproc])]
    if log_dir is not None:
        command += ["--log_dir", str(log_dir)]
    return command + list(entrypoint)


def strip_launch_options(argv: Sequence[str]) -> list[str]:
    """``argv`` without ``--nproc N``/``--gpus X`` (and their ``--opt=value`` forms)."""
    kept: list[str] = []
    skip_value = False
    for arg in argv:
        if skip_value:
            skip_value = False
        elif arg in LAUNCH_OPTIONS:
            skip_value = True
        elif not arg.startswith(tuple(f"{opt}=" for opt in LAUNCH_OPTIONS)):
            kept.append(arg)
    return kept


def relaunch_command(nproc: int, gpus: Optional[str], argv: list[str], log_dir: Optional[str] = None) -> list[str]:
    """The command that reruns embedkit's CLI with ``argv`` (``sys.argv[1:]``) in ``nproc`` workers.

    ``--nproc``/``--gpus`` are removed from the workers' arguments. Run it with ``env=launcher_env(gpus)``.
    """
    entrypoint = [sys.executable, "-u", "-m", "embedkit.cli", *strip_launch_options(argv)]
    return launcher_command(nproc, gpus, entrypoint, log_dir)


def launcher_env(gpus: Optional[str] = None, environ: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    """The environment for the launcher: ``environ`` (default ``os.environ``) made acceptable to it."""
    import paddle

    env = dict(os.environ if environ is None else environ)
    if not paddle.device.is_compiled_with_cuda():
        if gpus is not None:
            raise UserError("--gpus needs a CUDA build of PaddlePaddle (pip install paddlepaddle-gpu)")
        env.pop("CUDA_VISIBLE_DEVICES", None)
    return env

"""paddle2onnx conversion, run in a child process: ``python -m embedkit.inference.onnx_convert``.

A child because paddle2onnx aborts the whole process (C++ ``abort()``) when a graph holds an operator it
cannot convert; the parent turns that into an error message, and ``--engine auto`` falls back to Paddle
Inference.

Nothing may be installed while converting. paddle2onnx 2.1.0's ``export()`` defaults to
``optimize_tool="polygraphy"``; that branch sets ``POLYGRAPHY_AUTOINSTALL_DEPS=1`` in ``os.environ`` and
polygraphy then runs ``pip install`` for what it lacks (onnx_graphsurgeon, a newer onnx) in the middle of a
conversion. Its ``onnxoptimizer`` branch is harmless but broken (a misspelt pass makes it always fall back).
Any other value writes the graph as converted, which is what embedkit asks for: ONNX Runtime optimises the
graph itself when the session starts. (``PADDLE2ONNX_DISABLE_AUTO_INSTALL`` is not read by paddle2onnx at
all.) As a second line of defence the child refuses to start any process while converting, through an
audit hook, and fails if anything tried.
"""

from __future__ import annotations

import argparse
import sys

NO_OPTIMIZER = "none"
EXIT_SPAWN_ATTEMPT = 3
_SPAWN_EVENTS = {"subprocess.Popen", "os.system", "os.posix_spawn", "os.exec", "os.spawn", "os.fork", "os.forkpty"}


def forbid_processes(attempts: list[str]) -> None:
    """Make every process start in this interpreter fail, and record what was tried in ``attempts``."""

    def hook(event: str, args: tuple) -> None:
        if event in _SPAWN_EVENTS:
            attempts.append(f"{event} {args!r}"[:300])
            raise PermissionError(f"embedkit: starting processes is not allowed during ONNX conversion ({event})")

    sys.addaudithook(hook)


def convert(model_file: str, params_file: str, out_file: str, opset: int, optimize_tool: str = NO_OPTIMIZER) -> int:
    attempts: list[str] = []
    forbid_processes(attempts)
    import paddle2onnx

    try:
        paddle2onnx.export(model_file, params_file, out_file, opset_version=opset, auto_upgrade_opset=True,
                           enable_onnx_checker=True, optimize_tool=optimize_tool)
    except SystemExit:  # paddle2onnx's logging.error() exits on a failed conversion; its log says why
        return 1
    if attempts:
        print("paddle2onnx tried to start a process during conversion (refused):", *attempts, sep="\n  ",
              file=sys.stderr)
        return EXIT_SPAWN_ATTEMPT
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_file")
    parser.add_argument("params_file")
    parser.add_argument("out_file")
    parser.add_argument("--opset", type=int, required=True)
    parser.add_argument("--optimize-tool", default=NO_OPTIMIZER, help="paddle2onnx optimize_tool (tests only)")
    args = parser.parse_args()
    sys.exit(convert(args.model_file, args.params_file, args.out_file, args.opset, args.optimize_tool))


if __name__ == "__main__":
    main()

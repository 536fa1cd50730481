"""Process-group set-up shared by the tests that train in two gloo processes on the CPU."""

from __future__ import annotations

import importlib
import os
import socket

import torch


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dist_setup(rank: int, world_size: int, port: int) -> None:
    """torchrun's environment for one of ``world_size`` processes on this machine, one thread each."""
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank),
                      LOCAL_WORLD_SIZE=str(world_size), LOCAL_SIZE=str(world_size),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), DS_ACCELERATOR="cpu")
    torch.set_num_threads(1)
    try:
        # import_module, not "import deepspeed.comm.torch as": deepspeed.comm's attribute "torch" is torch itself.
        ds_comm = importlib.import_module("deepspeed.comm.torch")
    except ImportError:
        return
    # DeepSpeed's CPU communication backend compiles a shared-memory all-reduce extension (C++, minutes on
    # 2 cores) when it starts; only its inference all-reduce uses it, not training, so the tests start without.
    ds_comm.build_shm_op = lambda: None


def dist_teardown() -> None:
    """The end of a test worker: what the training entry points do when they finish (every rank done, the
    group destroyed), so that no process aborts in gloo's teardown at exit."""
    from wenet_llm.train.engine import shutdown_distributed

    shutdown_distributed()

"""``pl.Trainer`` arguments for where a run is launched: one process, ``trainer.devices=N``, torchrun or SLURM."""
from __future__ import annotations

import os
from typing import Any, Mapping, Optional

import torch
from hydra.utils import instantiate
from lightning_fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment
from pytorch_lightning.strategies import DDPStrategy
from pytorch_lightning.utilities.rank_zero import rank_zero_info

from segattn.engine.checkpoint_io import AtomicCheckpointIO
from segattn.utils.precision import resolve_precision


def trainer_kwargs(trainer_cfg: Mapping) -> dict[str, Any]:
    """``cfg.trainer`` -> keyword arguments of ``pl.Trainer``.

    - ``precision: auto`` becomes the precision the training device computes fastest;
    - ``_target_`` entries (``strategy``, ``plugins``) are instantiated;
    - processes started by torchrun or srun set ``devices`` (when ``auto``) and ``num_nodes`` (when unset);
    - more than one process (devices x nodes) with ``strategy: auto`` selects :func:`ddp_strategy` and
      ``sync_batchnorm`` (the ``trainer=ddp`` settings), with one log line;
    - ``sync_batchnorm`` is dropped, with one log line, unless training runs on CUDA devices
      (PyTorch's SyncBatchNorm refuses CPU tensors);
    - under SLURM, Lightning's SLURM environment sets ranks; its in-handler requeue is off, because
      :class:`~segattn.callbacks.slurm_requeue.RequeueOnSigterm` saves and requeues at a step boundary
      on SIGTERM (pre-emption, or ``#SBATCH --signal=TERM@<s>`` before the time limit);
    - checkpoints are written atomically (:class:`AtomicCheckpointIO`).
    """
    kwargs = instantiate(trainer_cfg, _convert_="all")
    kwargs["precision"] = training_precision(trainer_cfg)
    launched = launched_processes()
    if launched is not None:
        per_node, nodes = launched
        if kwargs.get("devices", "auto") == "auto":
            kwargs["devices"] = per_node
        kwargs.setdefault("num_nodes", nodes)
    processes = device_count(kwargs.get("devices", "auto"), kwargs.get("accelerator", "auto")) * int(
        kwargs.get("num_nodes", 1))
    if kwargs.get("strategy", "auto") == "auto" and processes > 1:
        rank_zero_info(f"{processes} training processes: DDP with SyncBatchNorm selected (the trainer=ddp settings)")
        kwargs["strategy"], kwargs["sync_batchnorm"] = ddp_strategy(), True
    if kwargs.get("sync_batchnorm") and not on_cuda(kwargs.get("accelerator", "auto")):
        rank_zero_info("trainer.sync_batchnorm skipped: SyncBatchNorm needs CUDA devices, "
                       "so each CPU process keeps its own BatchNorm statistics")
        kwargs["sync_batchnorm"] = False
    plugins = list(kwargs.pop("plugins", None) or [])
    if SLURMEnvironment.detect():
        plugins.append(SLURMEnvironment(auto_requeue=False))
    kwargs["plugins"] = [*plugins, AtomicCheckpointIO()]
    return kwargs


def ddp_strategy(find_unused_parameters: bool = False, gradient_as_bucket_view: bool = True,
                 **kwargs: Any) -> DDPStrategy:
    """Lightning's DDP as segattn trains: every parameter (aux head included) gets a gradient at every
    step, and gradients live in DDP's buckets (one copy less in memory)."""
    return DDPStrategy(find_unused_parameters=find_unused_parameters,
                       gradient_as_bucket_view=gradient_as_bucket_view, **kwargs)


def device_count(devices: Any, accelerator: Any) -> int:
    """How many devices of this node Lightning's ``devices`` setting (``auto``, N, -1, "0,1", [0, 1]) uses."""
    available = torch.cuda.device_count() if on_cuda(accelerator) else 1
    if isinstance(devices, (list, tuple)):
        return len(devices)
    text = str(devices).strip()
    if text == "auto" or text == "-1":
        return available
    if "," in text:
        return len([d for d in text.split(",") if d.strip()])
    return int(text)


def launched_processes() -> Optional[tuple[int, int]]:
    """(processes per node, nodes) when torchrun or srun started this process, else None."""
    if TorchElasticEnvironment.detect():
        per_node = int(os.environ["LOCAL_WORLD_SIZE"])
        return per_node, int(os.environ["WORLD_SIZE"]) // per_node
    if SLURMEnvironment.detect():
        nodes = int(os.environ.get("SLURM_NNODES", "1"))
        per_node = os.environ.get("SLURM_NTASKS_PER_NODE") or int(os.environ["SLURM_NTASKS"]) // nodes
        return int(per_node), nodes
    return None


def on_cuda(accelerator: Any) -> bool:
    """Whether Lightning's ``accelerator`` setting (``auto``, ``gpu``, ``cuda``, ``cpu``, ...) trains on CUDA."""
    name = str(accelerator)
    return name in ("gpu", "cuda") or (name == "auto" and torch.cuda.is_available())


def training_precision(trainer_cfg: Mapping) -> str:
    """``trainer.precision`` resolved for the device ``trainer.accelerator`` trains on: ``auto`` becomes
    the fastest there (``bf16-mixed``, ``16-mixed`` or ``32-true``), any other value stays."""
    accelerator = str(trainer_cfg.get("accelerator", "auto"))
    device = "cuda" if on_cuda(accelerator) else ("cpu" if accelerator in ("auto", "cpu") else accelerator)
    return resolve_precision(trainer_cfg.get("precision", "auto"), device)

"""torch.distributed helpers that also work when no process group is initialised (single process)."""
from __future__ import annotations

from typing import Any

import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def is_main_process() -> bool:
    """Rank 0, or the only process."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def broadcast_from_main(value: Any) -> Any:
    """Every rank gets rank 0's ``value`` (a picklable object)."""
    if not is_distributed():
        return value
    payload = [value if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(payload, src=0)
    return payload[0]

"""What every process of a multi-process test run does before it exits."""


def leave_process_group():
    """Wait for every process, then tear the gloo group down: a process that exits with the group
    alive can abort in its C++ destructor ("terminate called without an active exception").
    """
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()

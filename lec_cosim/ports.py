"""Broker ports: a block per run, reserved so that runs started together never share one."""

from __future__ import annotations

import os
import random
import socket
import tempfile
from pathlib import Path

PORT_FIRST, PORT_END = 20000, 32768
"""Broker ports are drawn below Linux's ephemeral range (32768 and up), where outgoing connections of other
runs would otherwise take them between our check and the broker's bind."""
PORT_UNIT = 16
"""Ports are reserved in aligned units of this many: a block of ``span`` ports takes whole units."""
PORT_LOCKS = Path("/tmp" if Path("/tmp").is_dir() else tempfile.gettempdir()) / "lec-cosim-ports"
"""One lock file per unit; a unit is reserved while a process holds an exclusive ``flock`` on its file. A
fixed place (not ``$TMPDIR``, which differs between sessions), open to every user (sticky, like /tmp)."""


class NoFreePorts(RuntimeError):
    """No block of free broker ports could be reserved (all taken, or the lock folder is not usable)."""
_RESERVED: dict[int, list] = {}
"""This process's reservations: first port -> the open, locked unit files."""


def free_broker_port(host: str = "127.0.0.1", span: int = 16) -> int:
    """Reserve a block of ``span`` free ports for a broker (and its cores); returns the first.

    The ZMQ broker listens on its port and the next; it hands the ports above to the federates'
    cores. A block is free when nothing listens on its ports, and it is *reserved*: every unit of
    :data:`PORT_UNIT` ports it covers is locked (``flock``) by this process until
    :func:`release_broker_ports` (``run_federation`` calls it at the end of a run) or until the process
    ends, when the kernel drops the locks. Two runs, in this process or in any other process of this
    machine, therefore never draw overlapping blocks, however close together they start: random
    draws alone collided (five draws from the ~800 blocks collided in 1.4 % of tries, and parallel runs
    could both find a block free before either broker had bound it).
    """
    try:
        PORT_LOCKS.mkdir(exist_ok=True)
        if PORT_LOCKS.stat().st_uid == os.getuid():
            PORT_LOCKS.chmod(0o1777)  # the umask cut mkdir's mode: every user creates lock files here
    except OSError as exc:
        raise NoFreePorts(f"cannot use the port lock folder {PORT_LOCKS}: {exc.strerror or exc}") from None
    units = -(-int(span) // PORT_UNIT)
    n_units = (PORT_END - PORT_FIRST) // PORT_UNIT
    if not 1 <= units <= n_units:
        raise ValueError(f"a block of {span} ports does not fit in {PORT_FIRST}-{PORT_END - 1}")
    rng = random.SystemRandom()
    for _ in range(4 * n_units):
        first = rng.randrange(0, n_units - units + 1)
        held = _lock_units(range(first, first + units))
        if held is None:
            continue
        port = PORT_FIRST + first * PORT_UNIT
        if _bindable(host, range(port, port + span)):
            _RESERVED[port] = held
            return port
        for handle in held:
            handle.close()
    raise NoFreePorts(f"no free block of {span} broker ports in {PORT_FIRST}-{PORT_END - 1} (or no lock file in "
                      f"{PORT_LOCKS} could be taken)")


def release_broker_ports(port: int) -> None:
    """Give back a block reserved by :func:`free_broker_port` (nothing if this process holds none at ``port``)."""
    for handle in _RESERVED.pop(port, []):
        handle.close()


def _lock_units(units) -> list | None:
    """Lock every unit's file (none already locked by anyone, this process included), or None."""
    import fcntl

    held = []
    for unit in units:
        path = PORT_LOCKS / f"{unit}.lock"
        try:  # read-only: flock needs no write access, so users share the lock files
            fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)
        except OSError:  # not ours to take
            break
        try:
            if os.fstat(fd).st_uid == os.getuid():
                os.fchmod(fd, 0o666)  # the umask cut the mode
        except OSError:
            pass
        handle = os.fdopen(fd)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            break
        held.append(handle)
    else:
        return held
    for handle in held:
        handle.close()
    return None


def _bindable(host: str, ports) -> bool:
    """Whether nothing (of ours or another program's) listens on any of ``ports``."""
    sockets = []
    try:
        for p in ports:
            sock = socket.socket()
            sockets.append(sock)
            sock.bind((host, p))
        return True
    except OSError:
        return False
    finally:
        for sock in sockets:
            sock.close()

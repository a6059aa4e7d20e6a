"""Helpers of the adversarial tests: real small or read-only file systems, tiny real inputs.

A full disk and a read-only folder are produced for real: a tmpfs of a few kilobytes (or remounted
read-only) inside a private user + mount namespace (``unshare -rm``), so nothing needs root on the
host and nothing is mocked. Tests that need it skip with the reason when namespaces are not allowed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest


@lru_cache(maxsize=1)
def namespaces_available() -> bool:
    """True when ``unshare -rm`` can mount a tmpfs here."""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=16k tmpfs /mnt"],
                           capture_output=True, timeout=30)
    return probe.returncode == 0


needs_namespaces = pytest.mark.skipif(not namespaces_available(),
                                      reason="unshare -rm with a tmpfs mount is not permitted here")


def run_on_small_fs(mount: Path, script: str, *, size_kb: int = 64, setup: str = "",
                    readonly: bool = False, timeout: float = 120) -> dict:
    """Run ``script`` (Python) with a fresh tmpfs of ``size_kb`` mounted at ``mount``.

    ``setup`` runs first on the writable tmpfs (to create files); with ``readonly`` the tmpfs is then
    remounted read-only. The script must print one JSON object as its last line; it is returned.
    """
    mount.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    steps = [f"mount -t tmpfs -o size={size_kb}k tmpfs '{mount}'"]
    if setup:
        steps.append(f"{py} -c \"$SETUP\"")
    if readonly:
        steps.append(f"mount -o remount,ro '{mount}'")
    steps.append(f"exec {py} -c \"$SCRIPT\"")
    env = {"PATH": "/usr/bin:/bin", "SETUP": textwrap.dedent(setup), "SCRIPT": textwrap.dedent(script),
           "HOME": str(mount.parent)}
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", " && ".join(steps)], capture_output=True, text=True,
                          timeout=timeout, env=env)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise AssertionError(f"namespace script failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def tiny_ct(shape=(14, 12, 10), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A small non-cubic CT-like volume (air around a water-to-bone blob) and a non-identity affine."""
    rng = np.random.default_rng(seed)
    data = np.full(shape, -1000.0, np.float32)
    data[3:-3, 3:-3, 2:-2] = rng.uniform(0, 1200, size=(shape[0] - 6, shape[1] - 6, shape[2] - 4))
    affine = np.array([[0.0, -0.9, 0.0, 40.0], [1.1, 0.0, 0.0, -30.0], [0.0, 0.0, 2.5, -12.0], [0, 0, 0, 1]])
    return data, affine


def bomb_png(path: Path, width: int = 9500, height: int = 9500) -> Path:
    """A real, valid grayscale PNG of ``width`` x ``height`` black pixels, a few hundred KB on disk.

    Built by streaming zlib over the rows, so making it never holds the decoded image in memory.
    """
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    comp = zlib.compressobj(6)
    rows = b"\x00" * (width + 1) * 500  # 500 rows of filter byte 0 + one byte per gray pixel
    full, rest = divmod(height, 500)
    idat = b"".join(comp.compress(rows) for _ in range(full)) + comp.compress(rows[: rest * (width + 1)])
    idat += comp.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path

"""What each local pool worker does first: die with the run that started it, one BLAS thread.

Kept apart from :mod:`defacebench.run.executors` (which starts the workers) so that module stays small.
"""

from __future__ import annotations

import os


def die_with_parent() -> None:
    """Worker initializer: end this worker when the run that started it dies, even by SIGKILL.

    Linux delivers SIGKILL to the worker when its parent exits (prctl PR_SET_PDEATHSIG); without it a
    killed run leaves its workers (and, through their inherited pipe, the resource tracker) running.
    Elsewhere this is a no-op; a parent already gone before the call is caught by the getppid check."""
    import ctypes
    import signal
    import sys

    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))  # 1 = PR_SET_PDEATHSIG
        except OSError:
            return
        if os.getppid() == 1:
            os._exit(1)


THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


def one_thread_per_worker() -> None:
    """Worker initializer: BLAS and OpenMP run one thread in each worker process.

    Why: the pool already runs one worker per core; each worker's BLAS/OpenMP spawning a thread per
    core as well oversubscribes the machine (n workers x n threads on n cores), which costs CPU in
    spinning and context switches for no gain. The environment covers libraries loaded later, and
    threadpoolctl the ones already loaded (numpy's OpenBLAS comes in while the item is unpickled).
    Dask's nanny sets the same variables for its workers. ITK's thread count is set by the
    registration code itself (defacebench.anatomy.registration)."""
    for name in THREAD_ENV:
        os.environ[name] = "1"
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # threadpoolctl comes with scikit-learn; without it the environment must do
        return
    threadpool_limits(1)


def worker_init(single_thread: bool = True) -> None:
    """The local pool's worker initializer: :func:`die_with_parent`, then (several workers)
    :func:`one_thread_per_worker`; a lone worker keeps the libraries' own thread counts."""
    die_with_parent()
    if single_thread:
        one_thread_per_worker()

"""How long a failed try waits before the next one."""

import random

MAX_DOUBLINGS = 62


def retry_delay(
    try_number: int, base_s: float, backoff: bool, max_s: float, rand=random.random
) -> float:
    """Seconds before the try after ``try_number``. With backoff, the delay doubles each try
    and a jitter of up to as much again spreads out tasks that failed together (as Airflow
    does: between ``base * 2**(n-1)`` and twice that); never above ``max_s``."""
    if not backoff:
        return min(base_s, max_s)
    # 2**62 s outlasts any max_s; capping the exponent keeps the float finite for any try
    floor = base_s * 2.0 ** min(try_number - 1, MAX_DOUBLINGS)
    return min(floor * (1 + rand()), max_s)

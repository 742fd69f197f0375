"""Model calls: lazy model specs, one call runner (retries, timeouts, hedging, cap)."""

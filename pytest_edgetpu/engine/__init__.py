"""The measuring engine: the device session, the timing loop, crash isolation and memory,
contention, and the station a process measures on."""

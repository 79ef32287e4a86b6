"""The ground floor: errors, bounds, keys, bounded JSON reading and atomic writes, statistics.

Nothing here imports another room of the package."""

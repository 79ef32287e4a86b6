"""Devices: the runtime, Edge TPU discovery, the --edgetpu-device grammar, leases, delegates,
LiteRT accelerators, and the device profile that makes two measurements comparable."""

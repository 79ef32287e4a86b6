"""Relative mode (--edgetpu-against=REV): the revision, its files, the helper that runs a test
at it, and the base side of each benchmark."""

"""Benchmarks: scripts that measure and print; they assert nothing about time."""

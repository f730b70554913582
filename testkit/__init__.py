"""What the tests, the benchmarks and the scripts share: signing webhooks,
making events, launching the service and waiting for it, and reading /proc.

Nothing here is imported by the service itself.
"""

"""What the tests, the benchmarks and the scripts share: signing webhooks,
making events, launching the service and waiting for it, and asking about
processes (psutil).

Nothing here is imported by the service itself.
"""

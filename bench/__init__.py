"""The performance benchmark suite: `python -m bench [--smoke]`.

Each benchmark measures the service and the bare framework in the same run,
on the same machine, with the load generator and the server pinned to
different cores, and reports the ratio against its target.
"""

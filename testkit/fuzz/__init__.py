"""The ingress fuzz tests' parts: the oracle, the strategies and the harness
(tests/e2e/test_fuzz_ingress.py and test_fuzz_regressions.py)."""

"""A service run full of distinctive personal data and secrets, for the
end-to-end tests that nothing of them leaks (tests/e2e/test_private_data.py):
the people and secrets (people.py), the scenario and its sender
(scenario.py), and what it plays (play.py)."""

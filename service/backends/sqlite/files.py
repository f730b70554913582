"""The embedded default's files under DATA_DIR."""

EVENTS_FILE = "events.sqlite"  # the event log, the keys and the quarantine
MODELS_FILE = "readmodels.sqlite"  # apart, so the two writers never wait
KEY_FILE = "master.key"  # unless MASTER_KEY_FILE names another

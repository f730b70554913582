"""Pure read-model folds over stored events, the catch-up worker and its stores."""

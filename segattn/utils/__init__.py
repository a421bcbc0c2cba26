"""Small helpers shared across segattn."""

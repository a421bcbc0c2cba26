"""segattn.engine."""

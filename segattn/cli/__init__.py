"""segattn.cli."""

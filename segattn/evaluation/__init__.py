"""segattn.evaluation."""

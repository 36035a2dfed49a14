"""Search across the messages an agent may see: filled in by the search work."""

"""Admin pages for canned replies and agents' signatures: filled in by the composer work."""

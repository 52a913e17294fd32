"""Three gateway processes under a bounded load (issue 20, "Load and scale-out")."""

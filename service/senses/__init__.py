"""Backpack senses: the top-word table, the engine that runs the graph, the decomposition, the response."""

"""The seeded comparison of the four alignment methods (README.md): recipes, runner and summary."""

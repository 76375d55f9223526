"""senses."""

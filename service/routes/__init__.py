"""One thin router per capability."""

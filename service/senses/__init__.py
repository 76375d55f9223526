"""Backpack senses over HTTP: the request and response models, and the request answered with the runtime's maths."""

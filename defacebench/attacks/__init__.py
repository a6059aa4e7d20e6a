"""Attacks beyond recognizing what a defacer left: reconstructing what it removed (``refill``)."""

"""Data: corpus generation, preparation and loading."""

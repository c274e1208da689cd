"""Local mode: the deployed architecture on one machine (moto), its HTTP doors, its state folder."""

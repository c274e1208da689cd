"""Search across videos: the keyword index and the semantic side (embeddings)."""

"""The offline demo: pages we write in real sites' structures, the local server that serves them, and demo data."""

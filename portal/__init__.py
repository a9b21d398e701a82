"""Console entry point and shared settings for the research and statistics portal."""

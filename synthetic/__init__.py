"""A synthetic county with ground truth: real data never enters this repository."""

"""Batch runs: discovery of the recordings, the worker pool (`runner`) and the manifest."""

"""Engines: audio in, one speech score per 10 ms frame out (see `base.ScoreStream`)."""

"""Helpers the tests share: servers on 127.0.0.1, engine processes, configs and data paths."""

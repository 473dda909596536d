"""Model servers the engine starts itself: processes, lifecycles in a run, launchers, the demo."""

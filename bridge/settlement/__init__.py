"""Settlement of the delivery engine (import from bridge.settle): see bridge/settle.py."""

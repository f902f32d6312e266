"""smpp-bridge domain layer: configuration, storage, accounts, money, queueing and the worker."""

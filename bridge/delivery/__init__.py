"""The delivery worker: outbound stream -> routing -> leased SMPP session pool -> settlement.

``bridge.delivery.worker.Worker`` is the process's engine (``smpp-bridge worker``); see
docs/delivery.md for the design and the guarantees.
"""

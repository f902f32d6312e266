"""The send path: from a validated request to charged messages in the database and the stream.

Modules: ``numbers`` (libphonenumber validation and hints), ``chars`` (which characters a
parameter may hold), ``send`` (plan, price, the :class:`~bridge.accept.send.Acceptor`),
``committer`` (the generic group committer) and ``group`` (sends sharing one transaction and one
XADD pipeline), ``flusher`` (deferred ``queued`` marks and key last-used times), ``ids``
(time-ordered message ids), ``ratelimit`` (the shared per-key limit), ``logins`` (failed-login
throttling) and ``sweeper`` (the transactional outbox's re-enqueue of ``accepted`` rows).
"""

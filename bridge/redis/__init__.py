"""Redis, which carries work and coordination (never the truth): one home for clients and keys.

Modules: ``keys`` (every key name the bridge uses, built in one place), ``clients``
(:func:`~bridge.redis.clients.make_redis` with the timeouts we rely on, URL redaction),
``pinned`` (a connection kept per request thread for the accept path), ``outbox`` (the outbound
stream's entry format and XADD), ``lock`` (held locks and periodic passes), ``embedded`` (the
redis-server that ``smpp-bridge run`` starts and stops).
"""

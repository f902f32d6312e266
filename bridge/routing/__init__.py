"""Which SMSC connection serves a number, in what failover order, at what price.

``router`` (:class:`~bridge.routing.router.Router`: prefix and carrier routes over the parsed
``[[smsc]]``/``[[route]]`` tables of ``bridge.config``, decisions cached by prefix) and
``carriers`` (phonenumbers' carrier lookup).
"""

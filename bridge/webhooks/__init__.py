"""Delivery webhooks, the sending half: the stream entry codec (``events``), the SSRF rules
(``ssrf``), signing (``signing``), the attempt records (``attempts``) and the sender process
(``sender``). Modules import their siblings directly, never through this package."""

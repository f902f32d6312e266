"""Delivery webhooks, the sending half: the stream entry codec (``events``), the SSRF rules
(``ssrf``), signing (``signing``), the attempt records (``attempts``), the sender process
(``sender``) and its dead letters re-sent (``dead``). Modules import their siblings directly,
never through this package."""

"""The SMPP protocol layer: codec, status table, receipts, client session and simulated SMSC.

Knows nothing of accounts, HTTP or the database (imports point api -> bridge -> smpp).
"""

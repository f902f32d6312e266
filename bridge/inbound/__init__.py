"""Inbound (mobile-originated) messages: routing to accounts (``routing``), storing each one
before its deliver_sm is acknowledged (``store``), the inbound webhook outbox (``relay``), the
inbox listing (``inbox``) and the opt-out lists (``optouts``)."""

"""Operations: what the NOC, load balancers, orchestrators and monitoring read.

``status`` builds the one status document (binds, connections, the queue, message counts,
webhooks, inbound) that ``GET /api/v2/status``, ``smpp-bridge status`` and the ``/status``
page show, and the cheaper answer of ``GET /readyz``; ``token`` keeps the operator token file
``smpp-bridge run`` makes; ``access`` checks the operator token (and ``/metrics``
allow-lists); ``metrics``, ``metrics_dir`` and ``scrape`` are the Prometheus side; ``logs``
the log format.
"""

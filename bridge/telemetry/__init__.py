"""What every process counts and logs through: Prometheus metrics defined once (``metrics``), the
multiprocess directory they are kept in (``metrics_dir``) and the one log format (``logs``). It
imports nothing of ours, so every package may use it without a cycle."""

"""Process supervision: ``supervisor`` (the children of ``smpp-bridge run``, started in order,
watched and stopped in reverse) and ``lifecycle`` (``die_with_parent``, for every child)."""

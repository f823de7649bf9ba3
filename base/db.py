"""Database helpers every app shares."""

from django.db import models, transaction


def row_lock(model: type[models.Model], pk) -> None:
    """Hold row `pk` of `model` locked until the surrounding transaction ends, so writers that
    take the same lock go one at a time (a row lock on PostgreSQL; on SQLite every transaction
    here is IMMEDIATE and holds the write lock from its start)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("row_lock() only means something inside transaction.atomic()")
    model.objects.select_for_update().filter(pk=pk).values_list("pk", flat=True).first()

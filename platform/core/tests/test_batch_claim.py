"""Two deliveries of one batch's ingest message never read the file at the same time."""
from datetime import timedelta

import pytest
from django.utils import timezone

pytestmark = pytest.mark.django_db


def _batch(owner):
    from core.models import Batch

    return Batch.objects.create(owner=owner, app="medical", kind="medical.study")


def test_second_delivery_is_refused_while_the_first_holds_the_lease(make_user):
    from core.models import Batch
    from core.services import batch_claim

    batch = _batch(make_user("claim_a", "medical"))
    first = batch_claim(batch_id=batch.pk)
    assert first is not None and first.status == Batch.Status.PARSING and first.attempts == 1
    assert first.parse_lease_expires_at > timezone.now()
    assert batch_claim(batch_id=batch.pk) is None  # the duplicate delivery backs off
    assert Batch.objects.get(pk=batch.pk).attempts == 1


def test_an_expired_lease_lets_a_redelivery_take_over(make_user):
    from core.models import Batch
    from core.services import batch_claim

    batch = _batch(make_user("claim_b", "medical"))
    assert batch_claim(batch_id=batch.pk) is not None
    # the worker that read it died: its lease runs out
    Batch.objects.filter(pk=batch.pk).update(parse_lease_expires_at=timezone.now() - timedelta(seconds=1))
    again = batch_claim(batch_id=batch.pk)
    assert again is not None and again.attempts == 2


def test_a_parsed_batch_is_never_claimed_again(make_user):
    from core.models import Batch
    from core.services import batch_claim, batch_items_created

    batch = _batch(make_user("claim_c", "medical"))
    claimed = batch_claim(batch_id=batch.pk)
    batch_items_created(batch=claimed, jobs=[], errors=["nothing in it"], warnings=[])
    row = Batch.objects.get(pk=batch.pk)
    assert row.status == Batch.Status.FAILED and row.parse_lease_expires_at is None
    assert batch_claim(batch_id=batch.pk) is None

import pytest
from django.urls import reverse

from recognition import services
from recognition.models import ModelVersion, TrainingRun


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_superuser("boss", "b@example.org", "pw-boss-123")


@pytest.mark.django_db
def test_a_version_page_shows_metrics_and_the_confusion_matrix(client, staff, gallery):
    version = services.training_run(run=TrainingRun.objects.create(group=gallery))
    client.force_login(staff)
    page = client.get(reverse("admin:recognition_modelversion_change", args=[version.pk]))
    assert page.status_code == 200
    assert b"seed method" in page.content
    assert b"confusion.png" in page.content
    picture = client.get(reverse("admin:recognition_modelversion_confusion", args=[version.pk]))
    assert picture.status_code == 200
    assert picture.content.startswith(b"\x89PNG")
    assert client.get(reverse("admin:gallery_group_changelist")).status_code == 200


@pytest.mark.django_db
def test_activate_action_rolls_back(client, staff, gallery):
    v1 = services.training_run(run=TrainingRun.objects.create(group=gallery))
    v2 = services.training_run(run=TrainingRun.objects.create(group=gallery))
    assert v2.is_active
    client.force_login(staff)
    response = client.post(
        reverse("admin:recognition_modelversion_changelist"),
        {"action": "activate", "_selected_action": [v1.pk]},
        follow=True,
    )
    assert f"{v1} is now active.".encode() in response.content
    assert ModelVersion.objects.get(is_active=True) == v1


@pytest.mark.django_db(transaction=True)
def test_train_action_queues_one_run(client, staff, gallery, rq_queue):
    client.force_login(staff)
    for _ in range(2):
        client.post(
            reverse("admin:gallery_group_changelist"),
            {"action": "train", "_selected_action": [gallery.pk]},
        )
    assert TrainingRun.objects.count() == 1
    assert TrainingRun.objects.get().requests == 2
    assert rq_queue.count == 1


@pytest.mark.django_db
def test_every_admin_list_renders(client, staff, gallery):
    from django.contrib import admin as django_admin

    services.training_run(run=TrainingRun.objects.create(group=gallery))
    client.force_login(staff)
    for model in django_admin.site._registry:
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        assert client.get(url).status_code == 200, url

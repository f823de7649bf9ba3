import pytest
from django.core.management import call_command

from tests.conftest import FIXTURES

KNOWN = ["tom-hanks", "halle-berry", "keanu-reeves", "miley-cyrus"]


@pytest.fixture
def gallery(db, tmp_path):
    """Four members, five fixture faces each, imported and approved."""
    from gallery.models import Group

    root = tmp_path / "gallery"
    root.mkdir()
    for slug in KNOWN:
        (root / slug).symlink_to(FIXTURES / "faces" / slug)
    call_command("import_gallery", str(root), "--group", "celebs", stdout=open("/dev/null", "w"))
    return Group.objects.get(slug="celebs")


@pytest.fixture
def celebs(gallery):
    """The four fixture people's gallery, trained (an active model version)."""
    call_command("train", "--group", "celebs", "--cv", "3", stdout=open("/dev/null", "w"))
    return gallery


@pytest.fixture
def fan(django_user_model):
    return django_user_model.objects.create_user("fan", password="pw-fan-123")

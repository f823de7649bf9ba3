import pytest

from gallery import services


@pytest.fixture
def group(db):
    return services.group_get_or_create(slug="celebs", name="Celebs")


@pytest.fixture
def tom(group):
    return services.member_get_or_create(group=group, slug="tom-hanks")


@pytest.fixture
def keanu(group):
    return services.member_get_or_create(group=group, slug="keanu-reeves")


@pytest.fixture
def curator(db, django_user_model):
    from base.roles import CURATORS

    user = django_user_model.objects.create_user("curie", password="pw-curator-1", is_staff=True)
    user.groups.add(django_user_model.groups.rel.model.objects.get(name=CURATORS))
    return user

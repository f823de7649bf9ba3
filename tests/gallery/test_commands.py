import shutil

import pytest
from django.core.management import CommandError, call_command

from gallery.models import GalleryImage, Member
from tests.conftest import FIXTURES


@pytest.fixture
def gallery_dir(tmp_path):
    """Three members' fixture faces, plus one file that is not an image."""
    root = tmp_path / "faces"
    for slug in ("tom-hanks", "halle-berry", "keanu-reeves"):
        shutil.copytree(FIXTURES / "faces" / slug, root / slug)
    (root / "keanu-reeves" / "notes.jpg").write_text("<html>not an image</html>")
    return root


@pytest.mark.django_db
def test_import_gallery_creates_members_and_approves_clear_faces(gallery_dir, capsys):
    call_command("import_gallery", str(gallery_dir), "--group", "celebs")
    out, err = capsys.readouterr()

    members = Member.objects.filter(group__slug="celebs")
    assert sorted(members.values_list("slug", flat=True)) == [
        "halle-berry",
        "keanu-reeves",
        "tom-hanks",
    ]
    assert len(set(members.values_list("color", flat=True))) == 3
    images = GalleryImage.objects.filter(member__group__slug="celebs")
    assert images.count() == 15
    approved = images.filter(status=GalleryImage.Status.APPROVED)
    assert set(approved) == {i for i in images if i.face_count == 1 and not i.is_small}
    assert approved.count() >= 13
    assert "rejected keanu-reeves/notes.jpg: not an image" in err
    assert "15 imported, 0 already there, 1 rejected" in out


@pytest.mark.django_db
def test_a_second_import_adds_nothing(gallery_dir, capsys):
    call_command("import_gallery", str(gallery_dir), "--group", "celebs")
    count = GalleryImage.objects.count()
    capsys.readouterr()

    call_command("import_gallery", str(gallery_dir), "--group", "celebs")

    assert GalleryImage.objects.count() == count
    assert "0 imported, 15 already there" in capsys.readouterr().out


@pytest.mark.django_db
def test_import_of_a_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="is not a directory"):
        call_command("import_gallery", str(tmp_path / "nope"), "--group", "celebs")


@pytest.mark.django_db
def test_clean_gallery_recomputes_flags(gallery_dir, capsys):
    call_command("import_gallery", str(gallery_dir), "--group", "celebs", "--pending")
    # A curator moves one of Tom's pictures to Keanu by mistake.
    image = GalleryImage.objects.filter(member__slug="tom-hanks", face_count=1).first()
    image.member = Member.objects.get(slug="keanu-reeves")
    image.save()

    call_command("clean_gallery", "--group", "celebs")

    image.refresh_from_db()
    assert image.looks_like.slug == "tom-hanks"
    assert "1 suspected mislabels" in capsys.readouterr().out


@pytest.mark.django_db
def test_clean_gallery_of_an_unknown_group_is_a_clear_error():
    with pytest.raises(CommandError, match="no group with slug 'nope'"):
        call_command("clean_gallery", "--group", "nope")

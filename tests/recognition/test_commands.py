import json
import os
import pickle
import shutil

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from gallery.models import GalleryImage, Member
from recognition.models import ModelVersion
from tests.conftest import FIXTURES
from tests.recognition.conftest import KNOWN


def descriptors():
    data = np.load(FIXTURES / "dlib_descriptors.npz")
    names = [str(p).split("/")[1] for p in data["paths"]]
    return [np.asarray(v, dtype=np.float64) for v in data["descriptors"]], names


def write_pickle(path, payload):
    path.write_bytes(pickle.dumps(payload))
    return path


def last_json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.django_db
def test_train_prints_metrics_with_the_seed_method_as_one_json_line(gallery, capsys):
    call_command("train", "--group", "celebs", "--cv", "3")
    result = last_json(capsys)
    assert result["version"] == 1 and result["active"] is True
    assert result["folds"] == 3
    assert {"accuracy", "coverage_at_99_precision", "per_member", "confusion"} <= set(result)
    assert result["seed"]["method"].startswith("linear SVC")


@pytest.mark.django_db
def test_evaluate_reports_known_and_stranger_fractions(gallery, tmp_path, capsys):
    call_command("train", "--group", "celebs")
    capsys.readouterr()
    root = tmp_path / "eval"
    for slug in [*KNOWN, "will-smith"]:
        shutil.copytree(FIXTURES / "faces" / slug, root / slug)

    call_command("evaluate", str(root), "--group", "celebs")
    result = last_json(capsys)

    assert result["known_faces"] == 20 and result["stranger_faces"] == 5
    total = result["named_right"] + result["named_wrong"] + result["unknown"]
    assert total == pytest.approx(1.0)
    assert result["named_right"] >= 0.8  # these are the gallery images themselves
    assert 0.0 <= result["strangers_named"] <= 1.0


@pytest.mark.django_db
def test_evaluate_without_an_active_model_says_so(gallery, tmp_path):
    with pytest.raises(CommandError, match="no active model version"):
        call_command("evaluate", str(tmp_path), "--group", "celebs")


@pytest.mark.django_db
def test_import_seed_pickle_brings_the_original_scripts_work_across(tmp_path, capsys):
    vectors, names = descriptors()
    names = [n.replace("-", " ").title() for n in names]
    path = write_pickle(tmp_path / "encode.pickle", {"encodings": vectors, "names": names})

    call_command("import_seed_pickle", str(path), "--group", "seed")
    result = last_json(capsys)
    assert result["added"] == len(vectors)
    assert Member.objects.filter(group__slug="seed").count() == 10
    assert Member.objects.get(slug="tom-hanks").name == "Tom Hanks"
    samples = GalleryImage.objects.filter(member__group__slug="seed")
    assert samples.filter(status="approved", file="").count() == len(vectors)
    assert np.allclose(samples.order_by("pk").first().vector(), vectors[0], atol=1e-6)

    call_command("import_seed_pickle", str(path), "--group", "seed")
    assert last_json(capsys)["already_there"] == len(vectors)

    call_command("train", "--group", "seed", "--cv", "3")
    assert ModelVersion.objects.get(group__slug="seed").training_counts["tom-hanks"] == 5


@pytest.mark.django_db
def test_a_pickle_with_mismatched_lengths_is_refused(tmp_path):
    vectors, names = descriptors()
    path = write_pickle(tmp_path / "encode.pickle", {"encodings": vectors, "names": names[:-1]})
    with pytest.raises(CommandError, match="50 encodings but 49 names"):
        call_command("import_seed_pickle", str(path), "--group", "seed")
    assert GalleryImage.objects.count() == 0


class Exploit:
    def __reduce__(self):
        return (os.system, ("touch /tmp/twicesite-pwned",))


@pytest.mark.django_db
def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    path = write_pickle(tmp_path / "evil.pickle", {"encodings": [Exploit()], "names": ["x"]})
    with pytest.raises(CommandError, match="refusing to load"):
        call_command("import_seed_pickle", str(path), "--group", "seed")
    assert not os.path.exists("/tmp/twicesite-pwned")


@pytest.mark.django_db
def test_a_pickle_of_the_wrong_shape_is_refused(tmp_path):
    path = write_pickle(tmp_path / "x.pickle", {"encodings": [[1.0, 2.0]], "names": ["a"]})
    with pytest.raises(CommandError, match="encoding 0 is not 128 finite numbers"):
        call_command("import_seed_pickle", str(path), "--group", "seed")
    path = write_pickle(tmp_path / "y.pickle", ["not", "a", "dict"])
    with pytest.raises(CommandError, match="not an encode.pickle"):
        call_command("import_seed_pickle", str(path), "--group", "seed")

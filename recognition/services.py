"""Writes for recognition: encoding gallery faces, training model versions, activating them."""

import logging
import tempfile
import time
from pathlib import Path

import django_rq
import numpy as np
from django.core.files import File
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone
from redis.exceptions import LockError
from rq.exceptions import StopRequested

from base.db import row_lock
from base.jobs import job_alive, job_enqueue, running
from core.classifier import model
from core.classifier.model import POINTS, SEED_AXES, ClassifierError, FaceClassifier, loads
from core.faces import embed
from gallery.models import GalleryImage, Group
from gallery.services import image_pixels
from recognition import selectors
from recognition.models import ModelVersion, TrainingRun
from recognition.signals import group_naming_changed, model_version_activated

log = logging.getLogger(__name__)

ENCODE_BATCH = 32
# A member's cross-validated recall or precision may fall by this much (or by one face of
# hers, when she has fewer than 20) before a new version counts as worse for her: with 5-fold
# CV on a gallery of 10-40 faces a member, one face moves her figures by 2.5 to 10 points, and
# runs on the same gallery with other fold assignments move them by about that much.
MEMBER_TOLERANCE = 0.05
# Versions measured without per-member figures fall back to comparing overall accuracy.
ACTIVATION_TOLERANCE = 0.01


def embeddings_encode(*, group: Group, progress=None) -> dict[str, int]:
    """Compute the embeddings that approved images lack for the group's face model."""
    embedder = embed.embedder(group.embedding_model)
    stale = (
        selectors.training_images(group)
        .filter(face_box__isnull=False)
        .filter(Q(embedding__isnull=True) | ~Q(embedding_model=embedder.model_id))
    )
    todo = list(stale.exclude(file=""))
    no_file = stale.filter(file="").count()  # embedding-only samples cannot be re-encoded
    failed = 0
    for start in range(0, len(todo), ENCODE_BATCH):
        batch, chips = [], []
        for image in todo[start : start + ENCODE_BATCH]:
            try:
                pixels = image_pixels(image)
            except Exception as exc:  # a file gone missing must not stop the others
                log.warning("cannot read %s: %s", image.file.name, exc)
                failed += 1
                continue
            batch.append(image)
            chips.append(embedder.chips(pixels, [image.face_box])[0])
        if batch:
            vectors = embedder.embed_chips(np.stack(chips))
            for image, vector in zip(batch, vectors, strict=True):
                image.embedding = np.asarray(vector, dtype=np.float32).tobytes()
                image.embedding_model = embedder.model_id
            GalleryImage.objects.bulk_update(batch, ["embedding", "embedding_model"])
        if progress:
            progress(100 * min(start + ENCODE_BATCH, len(todo)) / len(todo))
    return {"encoded": len(todo) - failed, "failed": failed, "not_encodable": no_file}


def group_switch_embedding(*, group: Group, name: str, requested_by=None) -> TrainingRun:
    """Move a group to another face model: a training run re-encodes its gallery with it and
    trains a version; once that version is active, the group's videos are analysed again
    (relabelling from stored embeddings only works within one model)."""
    if name not in Group.Embedding.values:
        raise ValueError(f"unknown face model {name!r}")
    Group.objects.filter(pk=group.pk).update(embedding_model=name)
    group.embedding_model = name
    label = Group.Embedding(name).label
    return training_request(group=group, reason=f"switch to {label}", requested_by=requested_by)


def training_request(
    *, group: Group, reason: str = "", requested_by=None, folds: int = 5
) -> TrainingRun:
    """Queue a training run for `group`, or join the one already waiting to start."""
    with transaction.atomic():
        # Serialises concurrent requests for one group (a row lock on PostgreSQL; SQLite
        # transactions here take the write lock up front).
        row_lock(Group, group.pk)
        waiting = TrainingRun.objects.filter(group=group, state=TrainingRun.State.QUEUED).first()
        if waiting:
            TrainingRun.objects.filter(pk=waiting.pk).update(requests=waiting.requests + 1)
            waiting.refresh_from_db()
            return waiting
        run = TrainingRun.objects.create(
            group=group, reason=reason[:200], requested_by=requested_by, folds=folds
        )
        job_enqueue(run)
    return run


def training_run(*, run: TrainingRun, attempt: int | None = None) -> ModelVersion:
    """Encode what is missing, train, measure and store a new version (one run per group)."""
    lock = _group_training_lock(run)
    try:
        with running(run, attempt=attempt) as progress:
            progress(0, "encoding gallery faces", force=True)
            embeddings_encode(group=run.group, progress=lambda p: progress(0.3 * p))
            version = _train(run, progress)
        TrainingRun.objects.filter(pk=run.pk).update(version=version)
        return version
    finally:
        try:
            lock.release()
        except LockError:
            pass  # it expired or was broken: nothing to give back


def _group_training_lock(run: TrainingRun):
    """Wait until no other run trains this group, so versions come out in request order.

    A lock held by a run whose worker died is broken at once, not after its timeout."""
    conn = django_rq.get_connection("default")
    lock = conn.lock(f"twicesite:train:{run.group_id}", timeout=3600)
    deadline = time.monotonic() + 3600
    while not lock.acquire(blocking_timeout=2):
        others = TrainingRun.objects.filter(group=run.group, state=TrainingRun.State.RUNNING)
        if not any(job_alive(other) for other in others.exclude(pk=run.pk)):
            conn.delete(lock.name)  # its holder is gone
        if time.monotonic() > deadline:
            raise RuntimeError("another training of this group did not finish within an hour")
    return lock


def _train(run: TrainingRun, progress) -> ModelVersion:
    # scikit-learn (1.5 s to import) is for training only: no page or video job pays for it.
    from core.classifier.evaluation import cross_validate
    from core.classifier.training import fit_choosing

    group = run.group
    embedder = embed.embedder(group.embedding_model)
    embedding_model = embedder.model_id
    X, labels = selectors.training_set(group, embedding_model)
    if not labels:
        raise ClassifierError(
            f"no training faces: {group} has no approved gallery face encoded with {embedder.label}"
        )
    progress(30, f"training on {len(labels)} faces", force=True)
    gate = embedder.same_person_distance
    fitted = fit_choosing(X, labels, folds=run.folds, default_max_distance=gate)
    clf = fitted.clf
    progress(50, f"cross-validating on {len(labels)} faces", force=True)
    try:
        metrics = cross_validate(X, labels, folds=run.folds, default_max_distance=gate)
    except ClassifierError as exc:
        # A gallery can be too small to measure (one member, one face) yet still usable.
        metrics = {"accuracy": None, "cross_validation": f"not possible: {exc}"}
    metrics["mode"] = clf.mode
    metrics["rule"] = fitted.choice  # which rule won on the whole gallery, and why
    metrics["thresholds"] = {
        "min_probability": clf.thresholds.min_probability,
        "max_distance": clf.thresholds.max_distance,
        "source": clf.thresholds.source,
    }
    metrics["operating_points"] = {
        str(point): {
            "min_probability": p.min_probability,
            "max_distance": p.max_distance,
            "known_unnamed": p.cv_known_unknown,
            "strangers_named": p.cv_strangers_named,
        }
        # A distance-only model has none.
        for point, p in zip(POINTS if clf.points else (), clf.points, strict=True)
    }
    counts = {slug: labels.count(slug) for slug in clf.members}
    progress(95, "saving", force=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "classifier.npz"
        sha256 = model.save(clf, path)
        with transaction.atomic():
            row_lock(Group, group.pk)
            number = (group.versions.aggregate(n=Max("number"))["n"] or 0) + 1
            version = ModelVersion(
                group=group,
                number=number,
                sha256=sha256,
                embedding_model=embedding_model,
                members=list(clf.members),
                training_counts=counts,
                # Infinite gates (the seed's rule has no distance gate) are stored as null.
                metrics=_json_ready(metrics),
            )
            with path.open("rb") as handle:
                version.file.save("classifier.npz", File(handle), save=False)
            version.save()
            _activate_if_not_worse(version)
    return version


def _json_ready(value):
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    return value


def _activate_if_not_worse(version: ModelVersion) -> None:
    activate, reason = activation_verdict(version, selectors.active_version(version.group))
    if activate:
        model_version_activate(version=version, note=reason)
        return
    version.needs_review = True
    version.note = reason[:255]
    version.save(update_fields=["needs_review", "note"])


def _name(slug: str) -> str:
    return slug.replace("-", " ").title()


def member_regressions(version: ModelVersion, active: ModelVersion) -> list[str]:
    """Members both versions know whose recall or precision got worse by more than the
    tolerance, said in words ("Nayeon's recall fell from 98.0% to 70.0%")."""
    new, old = version.metrics.get("per_member") or {}, active.metrics.get("per_member") or {}
    found = []
    for slug in sorted(set(version.members) & set(active.members)):
        if slug not in new or slug not in old:
            continue
        support = new[slug].get("support") or 0
        slack = max(MEMBER_TOLERANCE, 1 / support) if support else MEMBER_TOLERANCE
        for figure in ("recall", "precision"):
            was, now = old[slug].get(figure), new[slug].get(figure)
            if was is not None and now is not None and now < was - slack:
                found.append(f"{_name(slug)}'s {figure} fell from {was:.1%} to {now:.1%}")
    return found


def seed_regressions(version: ModelVersion) -> list[str]:
    """Where the version's cross-validated figures are worse than the seed scripts' rule on
    the same gallery, in words ("known faces named wrong 1.2% (seed 0.6%)")."""
    m = version.metrics
    seed = m.get("seed") or {}
    found = []
    for key, (words, sign) in SEED_AXES.items():
        ours, theirs = m.get(key), seed.get(key)
        if ours is not None and theirs is not None and sign * (ours - theirs) < -1e-9:
            found.append(f"{words} {ours:.1%} (seed {theirs:.1%})")
    return found


def activation_verdict(version: ModelVersion, active: ModelVersion | None) -> tuple[bool, str]:
    """Whether a new version replaces the active one, and why, in words.

    It is compared with the active one on the members both know, member by member: a version
    that adds a member is not worse because her faces are harder, so overall accuracy over
    different member sets is not compared. A version with no shared member getting worse
    (beyond MEMBER_TOLERANCE) is activated."""
    worse = seed_regressions(version)
    if worse:
        # Even a group's first model: the original scripts' rule would have named its gallery
        # better, so a person decides.
        return False, (
            f"waits for review: on its own gallery it does worse than the original scripts' "
            f"rule ({'; '.join(worse)}, nested cross-validation). Activate it if that is right."
        )
    if active is None:
        return True, "the group's first model"
    if active.embedding_model != version.embedding_model:
        return True, "a curator switched the face model"  # what they asked for
    if version.accuracy() is None and version.metrics.get("cross_validation"):
        # A member with one face (a new one, say) cannot be cross-validated: nothing says
        # the version is no worse, so a person decides.
        return False, (
            f"waits for review: cross-validation {version.metrics['cross_validation']}; "
            "activate it by hand if it is right."
        )
    added = [_name(s) for s in version.members if s not in active.members]
    dropped = [_name(s) for s in active.members if s not in version.members]
    change = "; ".join(
        part
        for part in (
            f"adds {', '.join(added)}" if added else "",
            f"drops {', '.join(dropped)}" if dropped else "",
        )
        if part
    )
    measured = version.metrics.get("per_member") and active.metrics.get("per_member")
    if measured:
        worse = member_regressions(version, active)
        if worse:
            return False, (
                f"waits for review: {'; '.join(worse)} (against v{active.number}). "
                "Activate it if that is right."
            )
        return True, f"{change + '; ' if change else ''}no member got worse than v{active.number}"
    new, old = version.accuracy(), active.accuracy()
    if old is None or added or (new is not None and new >= old - ACTIVATION_TOLERANCE):
        return True, change or "not measured member by member; accuracy held"
    shown = "not measured" if new is None else f"{new:.1%}"
    return False, (
        f"waits for review: accuracy {shown} is below v{active.number}'s {old:.1%}. "
        "Activate it if that is right."
    )


@transaction.atomic
def model_version_activate(*, version: ModelVersion, note: str = "") -> ModelVersion:
    """Make `version` its group's active model (also how a curator rolls back)."""
    ModelVersion.objects.filter(group=version.group, is_active=True).exclude(pk=version.pk).update(
        is_active=False
    )
    version.is_active = True
    version.needs_review = False
    version.activated = timezone.now()
    fields = ["is_active", "needs_review", "activated"]
    if note:
        version.note = f"activated: {note}"[:255]
        fields.append("note")
    version.save(update_fields=fields)
    # Videos name their stored tracks again with it (queued once this commits).
    model_version_activated.send(sender=ModelVersion, version=version)
    return version


def margin_gate_words(margin: dict) -> str:
    """What a version's margin gate for tracks is and costs, in a sentence (train, admin)."""
    # Versions trained before the reach have none on record. Where there is a margin gate
    # there are four members or more, so the reach is a finite distance.
    reach = margin.get("reach")
    within = (
        f", while no further from that member than {reach:.3f} (the nearest such a stranger "
        f"came to a member)"
        if reach is not None
        else ""
    )
    return (
        f"Tracks are also named when their member is nearer than the next by "
        f"{margin['gate']:.3f} (no stranger of cross-validation came nearer one member than "
        f"the next by more){within}; nested, on single faces beyond the distance gate, it let in "
        f"{margin['strangers_let_in']:.1%} of strangers and named {margin['known_named']:.1%} "
        f"of known faces right, {margin['known_wrong']:.1%} wrong."
    )


def naming_classifier(version: ModelVersion, *, threshold: float | None = None) -> FaceClassifier:
    """The version's classifier at its group's operating point, or, for one run, naming only
    faces whose top member's probability reaches `threshold` (the seed's -t)."""
    clf = model_version_load(version)
    point = version.group.operating_point
    if clf.points or point == 0:
        clf = clf.at_point(point)
    else:
        log.warning("%s has no operating points: named at its cross-validated gates", version)
    if threshold is not None:
        clf = clf.with_min_probability(threshold)
    return clf


def group_operating_point_set(*, group: Group, point: int) -> None:
    """Move the group's operating point; its stored videos are named again at it."""
    if point not in POINTS:
        raise ValueError(f"operating point must be one of {POINTS}, got {point!r}")
    with transaction.atomic():
        changed = Group.objects.filter(pk=group.pk).exclude(operating_point=point)
        moved = changed.update(operating_point=point)
        group.operating_point = point
        active = selectors.active_version(group)
        if moved and active is not None:
            group_naming_changed.send(sender=Group, version=active)


def model_version_load(version: ModelVersion) -> FaceClassifier:
    """The version's classifier, checked against its stored SHA-256. Kept per process by that
    digest: a file's content cannot change under it, and a worker loads the active ones before
    it forks its work horses (models_warm)."""
    found = _loaded.get(version.sha256)
    if found is not None:
        return found
    with version.file.open("rb") as handle:
        data = handle.read()
    clf = loads(data, sha256=version.sha256, name=version.file.name)
    if len(_loaded) >= 8:
        _loaded.pop(next(iter(_loaded)))
    _loaded[version.sha256] = clf
    return clf


_loaded: dict[str, FaceClassifier] = {}


def models_warm() -> None:
    """Load what naming faces needs into this process: the detector, the face model of every
    group that has an active version, and those versions' classifiers."""
    embed.detector()
    for version in ModelVersion.objects.filter(is_active=True).select_related("group"):
        try:
            embed.embedder_for_model_id(version.embedding_model).load()
            model_version_load(version)
        except StopRequested:
            raise  # Ctrl-C while loading: the worker stops (base.worker), nothing failed
        except Exception:  # a broken file fails its jobs with the reason, not the worker
            log.exception("could not load %s", version)

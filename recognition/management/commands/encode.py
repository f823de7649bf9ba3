import json

from django.core.management.base import BaseCommand

from recognition.management.commands._common import get_group
from recognition.services import embeddings_encode


class Command(BaseCommand):
    help = "Compute the face embeddings that a group's approved images are missing."

    def add_arguments(self, parser):
        parser.add_argument("--group", required=True)

    def handle(self, *args, group, **options):
        result = embeddings_encode(group=get_group(group))
        self.stdout.write(json.dumps(result))

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from templates.services import CATALOG_DIR, template_catalog_load


class Command(BaseCommand):
    help = "Load (create or update) the shipped workspace-template catalog from YAML files."

    def add_arguments(self, parser):
        parser.add_argument("--directory", type=Path, default=CATALOG_DIR)

    def handle(self, *args, directory: Path, **options):
        result = template_catalog_load(directory=directory)
        self.stdout.write(
            f"Templates: {len(result.created)} created, {len(result.updated)} updated, "
            f"{len(result.unchanged)} unchanged, {len(result.invalid)} invalid."
        )
        for name, issues in result.invalid.items():
            self.stderr.write(f"  {name}: {'; '.join(issues)}")
        if result.invalid:
            raise CommandError("Some templates are invalid and were not loaded.")

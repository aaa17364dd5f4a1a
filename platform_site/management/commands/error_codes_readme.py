"""Regenerate the README's "Error codes" table from ErrorCode (platform_site/error_codes.py).

manage.py error_codes_readme            # rewrite the table between the markers in README.md
manage.py error_codes_readme --check    # exit 1 if README.md's table differs from the registry
manage.py error_codes_readme --print    # print the table
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from platform_site.error_codes import README_PATH, markdown_table, readme_with_table


class Command(BaseCommand):
    help = "Regenerate (or --check) the error-code table in README.md from platform_site/error_codes.py."

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true", help="Fail if README.md's table is out of date.")
        parser.add_argument("--print", action="store_true", dest="print_only", help="Print the table only.")
        parser.add_argument("--readme", default=str(README_PATH), help="The README to update (default: the repo's).")

    def handle(self, *args, check: bool, print_only: bool, readme: str, **options):
        if print_only:
            self.stdout.write(markdown_table())
            return
        path = Path(readme)
        current = path.read_text(encoding="utf-8")
        try:
            wanted = readme_with_table(current)
        except ValueError as error:
            raise CommandError(str(error)) from None
        if check:
            if wanted != current:
                raise CommandError(f"{path}: the error-code table is out of date; run `manage.py error_codes_readme`.")
            self.stdout.write(f"{path}: the error-code table is up to date.")
            return
        if wanted == current:
            self.stdout.write(f"{path}: already up to date.")
            return
        path.write_text(wanted, encoding="utf-8")
        self.stdout.write(f"{path}: error-code table rewritten.")

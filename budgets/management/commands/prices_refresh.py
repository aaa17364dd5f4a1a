"""Rebuild the price book (budgets.Price) from the AWS Price List API.

    manage.py prices_refresh                      # every region Carrel prices, from AWS (pricing:GetProducts)
    manage.py prices_refresh --region eu-west-1   # one region (repeat --region for more)
    manage.py prices_refresh --from-dir DIR       # recorded GetProducts responses (*.json) instead of AWS

The AWS credentials are the server's own (the default boto3 chain); they need `pricing:GetProducts`. All or
nothing: a price list with a problem (a unit or a price Carrel cannot read, two prices for one line) writes
nothing. A line the price list does not give keeps its current price; nothing is ever deleted.
"""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from budgets import prices, pricing_api
from workspaces import sizing


def default_regions() -> list[str]:
    return sorted(set(sizing.regions()) | {key[0] for key in prices.shipped_lines()})


class Command(BaseCommand):
    help = "Rebuild the price book from the AWS Price List API (or recorded responses) and print what changed."

    def add_arguments(self, parser):
        parser.add_argument(
            "--region", action="append", dest="regions", metavar="R", help="A region to price (repeatable)."
        )
        parser.add_argument("--from-dir", metavar="DIR", help="Read recorded GetProducts responses (*.json).")

    def handle(self, *args, regions=None, from_dir=None, **options):
        regions = sorted(set(regions or default_regions()))
        unknown = [region for region in regions if region not in sizing.regions()]
        if unknown:
            raise CommandError(f"Carrel does not launch in {', '.join(unknown)}; use {', '.join(sizing.regions())}.")
        try:
            documents = pricing_api.read_price_list_dir(from_dir) if from_dir else pricing_api.fetch_price_list(regions)
            parsed = pricing_api.parse_price_list(
                documents, regions=regions, instance_types=set(sizing.instance_types())
            )
            for note in parsed.notes:
                self.stdout.write(f"note: {note}")
            report = pricing_api.refresh(parsed, regions=regions, as_of=timezone.now().date())
        except pricing_api.PriceListError as error:
            raise CommandError(f"Price book unchanged: {error}") from error
        for change in report.changed:
            self.stdout.write(str(change))
        for key in report.kept:
            self.stdout.write(f"{' '.join(key)}: not in the price list, kept")
        self.stdout.write(
            self.style.SUCCESS(
                f"Price book refreshed for {', '.join(regions)}: {len(report.changed)} changed, "
                f"{report.unchanged} unchanged, {len(report.kept)} kept."
            )
        )
